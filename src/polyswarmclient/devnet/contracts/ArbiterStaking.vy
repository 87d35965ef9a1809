# pragma version 0.4.3
"""
@title ArbiterStaking (devnet, the 1.2 interface)
@notice Arbiters lock NCT here. A deposit becomes withdrawable after
        `stakeDuration` blocks (at once when the registry's deprecation has
        run its course); withdrawals use the oldest deposits first.
        Deposits come from `deposit` after an `approve`, or from the token's
        `approveAndCall` through `receiveApproval`. The registry records every
        vote (`recordBounty`), which gives each arbiter's response rate.
        An arbiter is eligible to vote with a stake of at least MINIMUM_STAKE
        and a response rate of at least VOTE_RATIO_NUMERATOR /
        VOTE_RATIO_DENOMINATOR once that many bounties were voted on.
        MINIMUM_STAKE and MAXIMUM_STAKE are constructor arguments (1.2: fixed
        at 10,000,000 and 100,000,000 NCT) so that a devnet can lower them.
        Pausers stop deposits and withdrawals.
"""

interface Token:
    def transfer(to: address, _value: uint256) -> bool: nonpayable
    def transferFrom(_from: address, to: address, _value: uint256) -> bool: nonpayable

interface Registry:
    def isArbiter(arbiter: address) -> bool: view
    def MAX_DURATION() -> uint256: view
    def assertionRevealWindow() -> uint256: view
    def arbiterVoteWindow() -> uint256: view
    def deprecatedBlock() -> uint256: view

event NewDeposit:
    _from: indexed(address)
    value: uint256

event NewWithdrawal:
    to: indexed(address)
    value: uint256

event BountyRecorded:
    guid: indexed(uint128)
    blockNumber: uint256

event BountyVoteRecorded:
    arbiter: address

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

event PauserAdded:
    account: indexed(address)

event PauserRemoved:
    account: indexed(address)

event Paused:
    account: address

event Unpaused:
    account: address

struct Deposit:
    blockNumber: uint256
    value: uint256

VERSION: public(constant(String[8])) = "1.2.0"
MAX_DEPOSITS: constant(uint256) = 256
VOTE_RATIO_NUMERATOR: public(constant(uint8)) = 9
VOTE_RATIO_DENOMINATOR: public(constant(uint8)) = 10

MINIMUM_STAKE: public(immutable(uint256))
MAXIMUM_STAKE: public(immutable(uint256))
stakeDuration: public(immutable(uint256))
token: immutable(address)

owner: public(address)
paused: public(bool)
pausers: HashMap[address, bool]
registry: address

# the live deposits of an arbiter are _deposits[arbiter][firstDeposit[arbiter] + i], i < count
_deposits: HashMap[address, HashMap[uint256, Deposit]]
firstDeposit: HashMap[address, uint256]
numDeposits: HashMap[address, uint256]
balanceOf: public(HashMap[address, uint256])

numBounties: public(uint256)
bounties: public(HashMap[uint128, bool])
bountyResponses: public(HashMap[address, uint256])
bountyResponseByGuidAndAddress: public(HashMap[uint128, HashMap[address, bool]])


@deploy
def __init__(_token: address, minimumStake: uint256, maximumStake: uint256, _stakeDuration: uint256):
    assert minimumStake <= maximumStake, "Invalid stake limits"
    token = _token
    MINIMUM_STAKE = minimumStake
    MAXIMUM_STAKE = maximumStake
    stakeDuration = _stakeDuration
    self.owner = msg.sender
    log OwnershipTransferred(previousOwner=empty(address), newOwner=msg.sender)
    self.pausers[msg.sender] = True
    log PauserAdded(account=msg.sender)


# ---------------------------------------------------------------- ownership and pausers

@internal
def _onlyOwner():
    assert msg.sender == self.owner, "Only owner"


@internal
def _onlyPauser():
    assert self.pausers[msg.sender], "Only pauser"


@view
@external
def isOwner() -> bool:
    return msg.sender == self.owner


@external
def transferOwnership(newOwner: address):
    self._onlyOwner()
    assert newOwner != empty(address), "Invalid owner"
    log OwnershipTransferred(previousOwner=self.owner, newOwner=newOwner)
    self.owner = newOwner


@external
def renounceOwnership():
    self._onlyOwner()
    log OwnershipTransferred(previousOwner=self.owner, newOwner=empty(address))
    self.owner = empty(address)


@view
@external
def isPauser(account: address) -> bool:
    return self.pausers[account]


@external
def addPauser(account: address):
    self._onlyPauser()
    assert account != empty(address) and not self.pausers[account], "Invalid pauser"
    self.pausers[account] = True
    log PauserAdded(account=account)


@external
def renouncePauser():
    self._onlyPauser()
    self.pausers[msg.sender] = False
    log PauserRemoved(account=msg.sender)


@external
def pause():
    self._onlyPauser()
    assert not self.paused, "Already paused"
    self.paused = True
    log Paused(account=msg.sender)


@external
def unpause():
    self._onlyPauser()
    assert self.paused, "Not paused"
    self.paused = False
    log Unpaused(account=msg.sender)


@external
def setBountyRegistry(_bountyRegistry: address):
    self._onlyOwner()
    self.registry = _bountyRegistry


# ---------------------------------------------------------------- deposits and withdrawals

@internal
def _deposit(_from: address, _value: uint256):
    assert not self.paused, "Contract is paused"
    assert self.registry != empty(address), "Registry not set"
    assert staticcall Registry(self.registry).isArbiter(_from), "Not an arbiter"
    assert _value > 0, "Zero deposit"
    assert self.balanceOf[_from] + _value <= MAXIMUM_STAKE, "Exceeds maximum stake"
    n: uint256 = self.numDeposits[_from]
    assert n - self.firstDeposit[_from] < MAX_DEPOSITS, "Too many deposits"
    assert extcall Token(token).transferFrom(_from, self, _value), "Token transfer failed"
    self._deposits[_from][n] = Deposit(blockNumber=block.number, value=_value)
    self.numDeposits[_from] = n + 1
    self.balanceOf[_from] += _value
    log NewDeposit(_from=_from, value=_value)


@external
def deposit(_value: uint256):
    self._deposit(msg.sender, _value)


@external
def receiveApproval(_from: address, _value: uint256, _tokenContract: address, _extraData: Bytes[1024]) -> bool:
    """
    @notice NectarToken.approveAndCall(staking, value, data) deposits `value` for its caller.
    """
    assert msg.sender == token, "Only the token"
    assert _tokenContract == token, "Invalid token"
    self._deposit(_from, _value)
    return True


@view
@external
def deposits(arbiter: address, index: uint256) -> (uint256, uint256):
    """
    @notice The `index`-th live deposit of `arbiter`, oldest first: (blockNumber, value).
    """
    first: uint256 = self.firstDeposit[arbiter]
    assert index < self.numDeposits[arbiter] - first, "Invalid deposit index"
    d: Deposit = self._deposits[arbiter][first + index]
    return (d.blockNumber, d.value)


@view
@internal
def _deprecateFinished() -> bool:
    if self.registry == empty(address):
        return False
    deprecated_at: uint256 = staticcall Registry(self.registry).deprecatedBlock()
    if deprecated_at == 0:
        return False
    longest: uint256 = staticcall Registry(self.registry).MAX_DURATION()
    longest += staticcall Registry(self.registry).assertionRevealWindow()
    longest += staticcall Registry(self.registry).arbiterVoteWindow()
    return block.number >= deprecated_at + longest


@view
@external
def isDeprecateFinished() -> bool:
    """
    @notice True once every bounty of a deprecated registry is over: stakes unlock at once.
    """
    return self._deprecateFinished()


@view
@internal
def _withdrawable(staker: address) -> uint256:
    released: bool = self._deprecateFinished()
    total: uint256 = 0
    first: uint256 = self.firstDeposit[staker]
    count: uint256 = self.numDeposits[staker] - first
    for k: uint256 in range(count, bound=MAX_DEPOSITS):
        d: Deposit = self._deposits[staker][first + k]
        if not released and d.blockNumber + stakeDuration > block.number:
            break
        total += d.value
    return total


@view
@external
def withdrawableBalanceOf(staker: address) -> uint256:
    return self._withdrawable(staker)


@external
def withdraw(_value: uint256):
    assert not self.paused, "Contract is paused"
    assert _value > 0, "Zero withdrawal"
    assert _value <= self._withdrawable(msg.sender), "Exceeds withdrawable balance"
    remaining: uint256 = _value
    first: uint256 = self.firstDeposit[msg.sender]
    count: uint256 = self.numDeposits[msg.sender] - first
    for k: uint256 in range(count, bound=MAX_DEPOSITS):
        if remaining == 0:
            break
        idx: uint256 = first + k
        v: uint256 = self._deposits[msg.sender][idx].value
        if v <= remaining:
            remaining -= v
            self._deposits[msg.sender][idx] = empty(Deposit)
            self.firstDeposit[msg.sender] = idx + 1
        else:
            self._deposits[msg.sender][idx].value = v - remaining
            remaining = 0
    self.balanceOf[msg.sender] -= _value
    assert extcall Token(token).transfer(msg.sender, _value), "Token transfer failed"
    log NewWithdrawal(to=msg.sender, value=_value)


# ---------------------------------------------------------------- eligibility

@view
@external
def arbiterResponseRate(arbiter: address) -> (uint256, uint256):
    """
    @notice (bounties this arbiter voted on, bounties anyone voted on).
    """
    return (self.bountyResponses[arbiter], self.numBounties)


@view
@external
def isEligible(arbiter: address) -> bool:
    if self.balanceOf[arbiter] < MINIMUM_STAKE:
        return False
    considered: uint256 = self.numBounties
    if considered < convert(VOTE_RATIO_DENOMINATOR, uint256):
        return True
    numerator: uint256 = convert(VOTE_RATIO_NUMERATOR, uint256)
    denominator: uint256 = convert(VOTE_RATIO_DENOMINATOR, uint256)
    return self.bountyResponses[arbiter] * denominator // considered >= numerator


@external
def recordBounty(arbiter: address, bountyGuid: uint128, blockNumber: uint256):
    """
    @notice Called by the registry for every vote: counts the bounty once and the arbiter's response once.
    """
    assert msg.sender == self.registry, "Only registry"
    assert arbiter != empty(address), "Invalid arbiter"
    assert blockNumber != 0, "Invalid block number"
    if not self.bounties[bountyGuid]:
        self.bounties[bountyGuid] = True
        self.numBounties += 1
        log BountyRecorded(guid=bountyGuid, blockNumber=blockNumber)
    if not self.bountyResponseByGuidAndAddress[bountyGuid][arbiter]:
        self.bountyResponseByGuidAndAddress[bountyGuid][arbiter] = True
        self.bountyResponses[arbiter] += 1
    log BountyVoteRecorded(arbiter=arbiter)
