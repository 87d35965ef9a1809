# pragma version 0.4.3
"""
@title ArbiterStaking (devnet)
@notice Arbiters lock NCT here. A deposit becomes withdrawable after
        `stakeDuration` blocks; withdrawals use the oldest deposits first.
        The registry records bounties and votes for the eligibility ratio.
"""

interface Token:
    def transfer(to: address, _value: uint256) -> bool: nonpayable
    def transferFrom(_from: address, to: address, _value: uint256) -> bool: nonpayable

interface Registry:
    def isArbiter(arbiter: address) -> bool: view

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
    arbiter: indexed(address)

struct Deposit:
    blockNumber: uint256
    value: uint256

MAX_DEPOSITS: constant(uint256) = 256
VOTE_RATIO_NUMERATOR: public(constant(uint256)) = 9
VOTE_RATIO_DENOMINATOR: public(constant(uint256)) = 10
MINIMUM_BOUNTIES_FOR_RATIO: constant(uint256) = 10

MINIMUM_STAKE: public(immutable(uint256))
MAXIMUM_STAKE: public(immutable(uint256))
stakeDuration: public(immutable(uint256))
token: public(immutable(address))

owner: public(address)
registry: public(address)

# deposits[arbiter][i] for firstDeposit[arbiter] <= i < numDeposits[arbiter]
deposits: HashMap[address, HashMap[uint256, Deposit]]
firstDeposit: HashMap[address, uint256]
numDeposits: HashMap[address, uint256]
balanceOf: public(HashMap[address, uint256])

numBounties: public(uint256)
bountyResponses: public(HashMap[address, uint256])
voted: HashMap[uint128, HashMap[address, bool]]


@deploy
def __init__(_token: address, minimumStake: uint256, maximumStake: uint256, _stakeDuration: uint256):
    assert minimumStake <= maximumStake, "Invalid stake limits"
    token = _token
    MINIMUM_STAKE = minimumStake
    MAXIMUM_STAKE = maximumStake
    stakeDuration = _stakeDuration
    self.owner = msg.sender


@external
def setRegistry(_registry: address):
    assert msg.sender == self.owner, "Only owner"
    assert self.registry == empty(address), "Registry already set"
    self.registry = _registry


@external
def deposit(_value: uint256):
    assert self.registry != empty(address), "Registry not set"
    assert staticcall Registry(self.registry).isArbiter(msg.sender), "Not an arbiter"
    assert _value > 0, "Zero deposit"
    assert self.balanceOf[msg.sender] + _value <= MAXIMUM_STAKE, "Exceeds maximum stake"
    n: uint256 = self.numDeposits[msg.sender]
    assert n - self.firstDeposit[msg.sender] < MAX_DEPOSITS, "Too many deposits"
    assert extcall Token(token).transferFrom(msg.sender, self, _value), "Token transfer failed"
    self.deposits[msg.sender][n] = Deposit(blockNumber=block.number, value=_value)
    self.numDeposits[msg.sender] = n + 1
    self.balanceOf[msg.sender] += _value
    log NewDeposit(_from=msg.sender, value=_value)


@view
@internal
def _withdrawable(staker: address) -> uint256:
    total: uint256 = 0
    first: uint256 = self.firstDeposit[staker]
    count: uint256 = self.numDeposits[staker] - first
    for k: uint256 in range(count, bound=MAX_DEPOSITS):
        d: Deposit = self.deposits[staker][first + k]
        if d.blockNumber + stakeDuration > block.number:
            break
        total += d.value
    return total


@view
@external
def withdrawableBalanceOf(staker: address) -> uint256:
    return self._withdrawable(staker)


@external
def withdraw(_value: uint256):
    assert _value > 0, "Zero withdrawal"
    assert _value <= self._withdrawable(msg.sender), "Exceeds withdrawable balance"
    remaining: uint256 = _value
    first: uint256 = self.firstDeposit[msg.sender]
    count: uint256 = self.numDeposits[msg.sender] - first
    for k: uint256 in range(count, bound=MAX_DEPOSITS):
        if remaining == 0:
            break
        idx: uint256 = first + k
        v: uint256 = self.deposits[msg.sender][idx].value
        if v <= remaining:
            remaining -= v
            self.deposits[msg.sender][idx] = empty(Deposit)
            self.firstDeposit[msg.sender] = idx + 1
        else:
            self.deposits[msg.sender][idx].value = v - remaining
            remaining = 0
    self.balanceOf[msg.sender] -= _value
    assert extcall Token(token).transfer(msg.sender, _value), "Token transfer failed"
    log NewWithdrawal(to=msg.sender, value=_value)


@view
@external
def isEligible(arbiter: address) -> bool:
    if self.balanceOf[arbiter] < MINIMUM_STAKE:
        return False
    if self.numBounties < MINIMUM_BOUNTIES_FOR_RATIO:
        return True
    return self.bountyResponses[arbiter] * VOTE_RATIO_DENOMINATOR >= self.numBounties * VOTE_RATIO_NUMERATOR


@external
def recordBounty(guid: uint128, blockNumber: uint256):
    assert msg.sender == self.registry, "Only registry"
    self.numBounties += 1
    log BountyRecorded(guid=guid, blockNumber=blockNumber)


@external
def recordBountyVote(arbiter: address, guid: uint128):
    assert msg.sender == self.registry, "Only registry"
    if not self.voted[guid][arbiter]:
        self.voted[guid][arbiter] = True
        self.bountyResponses[arbiter] += 1
        log BountyVoteRecorded(arbiter=arbiter)
