# pragma version 0.4.3
"""
@title BountyRegistry (devnet, the 1.6 interface)
@notice Bounties, commit-reveal assertions, arbiter votes and settlement.
        Rules follow BountyRegistry 1.5 with a single bounty amount that is
        spread evenly over the artifacts (amount[i] = amount / numArtifacts).
        Rounds: 0 assertion (block < E), 1 reveal (E <= block < E+R),
        2 voting (E+R <= block < E+R+V), 3 voting with quorum, 4 finished.

        Roles as in 1.6, each held by the deployer at first: the owner
        (Ownable), pausers (a paused registry refuses new bounties and
        assertions; reveals, votes and settles go on, so a pause never costs an
        expert its commitment), arbiter managers (addArbiter/removeArbiter with
        the block number the decision was taken at), the fee manager
        (setBountyFee/setAssertionFee), the window manager (setWindows) and
        deprecators (deprecate/undeprecate).

        Voting needs the arbiter role AND stake eligibility in ArbiterStaking
        (stake >= MINIMUM_STAKE and a response rate of 9/10), as in 1.6; each
        vote is recorded there (recordBounty).

        Limits that 1.6 does not have (Vyper needs a static bound on every
        array and loop): at most 256 assertions and 256 votes per bounty, and
        the arbiter look-back range at most 256 bounties. 1.6 stores them in
        unbounded arrays, where the block gas limit of settleBounty binds long
        before 256 wide assertions.

        Ours only: calculateCommitment (pure), which lets the tests check the
        contract's commitment against the published vectors, whose sender's key
        nobody has.
"""

interface Token:
    def transfer(to: address, _value: uint256) -> bool: nonpayable
    def transferFrom(_from: address, to: address, _value: uint256) -> bool: nonpayable

interface Staking:
    def balanceOf(staker: address) -> uint256: view
    def isEligible(arbiter: address) -> bool: view
    def recordBounty(arbiter: address, bountyGuid: uint128, blockNumber: uint256): nonpayable

# The marketplace events: none of their arguments are indexed (as in the 1.6 ABI).
event NewBounty:
    guid: uint128
    artifactType: uint256
    author: address
    amount: uint256
    artifactURI: String[128]
    expirationBlock: uint256
    metadata: String[1024]

event NewAssertion:
    bountyGuid: uint128
    author: address
    index: uint256
    bid: DynArray[uint256, 256]
    mask: uint256
    numArtifacts: uint256
    commitment: uint256

event RevealedAssertion:
    bountyGuid: uint128
    author: address
    index: uint256
    nonce: uint256
    verdicts: uint256
    numArtifacts: uint256
    metadata: String[1024]

event NewVote:
    bountyGuid: uint128
    votes: uint256
    numArtifacts: uint256
    voter: address

event QuorumReached:
    bountyGuid: uint128

event SettledBounty:
    bountyGuid: uint128
    settler: address
    payout: uint256

event FeesUpdated:
    bountyFee: uint256
    assertionFee: uint256

event WindowsUpdated:
    assertionRevealWindow: uint256
    arbiterVoteWindow: uint256

event Deprecated:
    rollover: bool

event Undeprecated:
    pass

# The role events, shaped as in 1.6.
event AddedArbiter:
    account: indexed(address)
    blockNumber: uint256

event RemovedArbiter:
    account: indexed(address)
    blockNumber: uint256

event ArbiterManagerAdded:
    account: indexed(address)

event ArbiterManagerRemoved:
    account: indexed(address)

event DeprecatorAdded:
    account: indexed(address)

event DeprecatorRemoved:
    account: indexed(address)

event PauserAdded:
    account: indexed(address)

event PauserRemoved:
    account: indexed(address)

event Paused:
    account: address

event Unpaused:
    account: address

event NewFeeManager:
    previousManager: indexed(address)
    newManager: indexed(address)

event NewWindowManager:
    previousManager: indexed(address)
    newManager: indexed(address)

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

struct Bounty:
    guid: uint128
    artifactType: uint8
    author: address
    amount: uint256
    artifactURI: String[128]
    numArtifacts: uint256
    expirationBlock: uint256
    assignedArbiter: address
    quorumReached: bool
    quorumBlock: uint256
    quorumMask: uint256
    metadata: String[1024]

struct Assertion:
    author: address
    mask: uint256
    commitment: uint256
    nonce: uint256
    verdicts: uint256
    metadata: String[1024]

struct Vote:
    author: address
    votes: uint256
    validBloom: bool

VERSION: public(constant(String[8])) = "1.6.0"

MAX_ARTIFACTS: constant(uint256) = 256
MAX_ASSERTIONS: constant(uint256) = 256
MAX_VOTES: constant(uint256) = 256
MAX_LOOKBACK: constant(uint256) = 256
MAX_CANDIDATES: constant(uint256) = 256
MAX_PAGE_SIZE: constant(uint256) = 256
VALID_HASH_PERIOD: public(constant(uint256)) = 256
NUM_ARTIFACT_TYPES: constant(uint256) = 2

token: immutable(address)
staking: public(immutable(address))
BOUNTY_AMOUNT_MINIMUM: public(immutable(uint256))
ASSERTION_BID_ARTIFACT_MINIMUM: public(immutable(uint256))
ASSERTION_BID_ARTIFACT_MAXIMUM: public(immutable(uint256))
DEFAULT_BOUNTY_FEE: public(immutable(uint256))
DEFAULT_ASSERTION_FEE: public(immutable(uint256))
MAX_DURATION: public(immutable(uint256))
ARBITER_LOOKBACK_RANGE: public(immutable(uint256))
PAGE_SIZE: public(immutable(uint256))

owner: public(address)
paused: public(bool)
feeManager: address
windowManager: address
pausers: HashMap[address, bool]
arbiterManagers: HashMap[address, bool]
deprecators: HashMap[address, bool]

bountyFee: public(uint256)
assertionFee: public(uint256)
assertionRevealWindow: public(uint256)
arbiterVoteWindow: public(uint256)
deprecatedBlock: public(uint256)
rollover: public(bool)

isArbiter: public(HashMap[address, bool])
arbiterCount: public(uint256)

bounties: HashMap[uint128, Bounty]
bountyGuidAt: HashMap[uint256, uint128]
numBounties: uint256
blooms: HashMap[uint128, uint256[8]]
bountyFeePaid: HashMap[uint128, uint256]
assertionFeesTotal: HashMap[uint128, uint256]
bidTotal: HashMap[uint128, uint256]

assertions: HashMap[uint128, HashMap[uint256, Assertion]]
# assertionBidByGuid(guid, assertion index, bid index): the bid portions of each assertion
assertionBidByGuid: public(HashMap[uint128, HashMap[uint256, DynArray[uint256, MAX_ARTIFACTS]]])
assertionFeePaid: HashMap[uint128, HashMap[uint256, uint256]]
numAssertions: HashMap[uint128, uint256]
# index + 1 of the sender's assertion, 0 when none
assertionIndexPlusOne: HashMap[uint128, HashMap[address, uint256]]
expertAssertionRegistryByGuid: public(HashMap[uint256, HashMap[address, bool]])

votes: HashMap[uint128, HashMap[uint256, Vote]]
numVotes: HashMap[uint128, uint256]
arbiterVoteRegistryByGuid: public(HashMap[uint256, HashMap[address, bool]])
# malicious votes per artifact
quorumVotesByGuid: public(HashMap[uint128, HashMap[uint256, uint256]])
# votes that counted for each artifact (1.6 declares this mapping and never writes it)
voteCountByGuid: public(HashMap[uint256, HashMap[uint256, uint256]])

bountySettled: public(HashMap[uint128, HashMap[address, bool]])
settlementComputed: HashMap[uint128, bool]
posterRefund: HashMap[uint128, uint256]
arbiterReward: HashMap[uint128, uint256]
expertPayout: HashMap[uint128, HashMap[uint256, uint256]]


@deploy
def __init__(
    _token: address,
    _staking: address,
    _bountyFee: uint256,
    _assertionFee: uint256,
    bountyAmountMinimum: uint256,
    assertionBidMinimum: uint256,
    assertionBidMaximum: uint256,
    _assertionRevealWindow: uint256,
    _arbiterVoteWindow: uint256,
    maxDuration: uint256,
    arbiterLookbackRange: uint256,
    pageSize: uint256,
):
    assert assertionBidMinimum <= assertionBidMaximum, "Invalid bid limits"
    assert pageSize > 0 and pageSize <= MAX_PAGE_SIZE, "Invalid page size"
    assert maxDuration > 0, "Invalid max duration"
    assert arbiterLookbackRange > 0 and arbiterLookbackRange <= MAX_LOOKBACK, "Invalid lookback range"
    token = _token
    staking = _staking
    BOUNTY_AMOUNT_MINIMUM = bountyAmountMinimum
    ASSERTION_BID_ARTIFACT_MINIMUM = assertionBidMinimum
    ASSERTION_BID_ARTIFACT_MAXIMUM = assertionBidMaximum
    DEFAULT_BOUNTY_FEE = _bountyFee
    DEFAULT_ASSERTION_FEE = _assertionFee
    MAX_DURATION = maxDuration
    ARBITER_LOOKBACK_RANGE = arbiterLookbackRange
    PAGE_SIZE = pageSize
    self.bountyFee = _bountyFee
    self.assertionFee = _assertionFee
    self.assertionRevealWindow = _assertionRevealWindow
    self.arbiterVoteWindow = _arbiterVoteWindow
    self.owner = msg.sender
    log OwnershipTransferred(previousOwner=empty(address), newOwner=msg.sender)
    self.pausers[msg.sender] = True
    log PauserAdded(account=msg.sender)
    self.arbiterManagers[msg.sender] = True
    log ArbiterManagerAdded(account=msg.sender)
    self.deprecators[msg.sender] = True
    log DeprecatorAdded(account=msg.sender)
    self.feeManager = msg.sender
    log NewFeeManager(previousManager=empty(address), newManager=msg.sender)
    self.windowManager = msg.sender
    log NewWindowManager(previousManager=empty(address), newManager=msg.sender)


# ---------------------------------------------------------------- ownership

@internal
def _onlyOwner():
    assert msg.sender == self.owner, "Only owner"


@internal
def _onlyPauser():
    assert self.pausers[msg.sender], "Only pauser"


@internal
def _onlyArbiterManager():
    assert self.arbiterManagers[msg.sender], "Only arbiter manager"


@internal
def _onlyDeprecator():
    assert self.deprecators[msg.sender], "Only deprecator"


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


# ---------------------------------------------------------------- pausers

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


# ---------------------------------------------------------------- arbiters and their managers

@view
@external
def isArbiterManager(account: address) -> bool:
    return self.arbiterManagers[account]


@external
def addArbiterManager(account: address):
    self._onlyArbiterManager()
    assert account != empty(address) and not self.arbiterManagers[account], "Invalid arbiter manager"
    self.arbiterManagers[account] = True
    log ArbiterManagerAdded(account=account)


@external
def removeArbiterManager(account: address):
    self._onlyArbiterManager()
    assert self.arbiterManagers[account], "Not an arbiter manager"
    self.arbiterManagers[account] = False
    log ArbiterManagerRemoved(account=account)


@external
def addArbiter(account: address, blockNumber: uint256):
    """
    @notice Make `account` an arbiter; `blockNumber` is the block the decision was taken at.
    """
    self._onlyArbiterManager()
    assert account != empty(address), "Invalid arbiter"
    assert not self.isArbiter[account], "Already an arbiter"
    self.isArbiter[account] = True
    self.arbiterCount += 1
    log AddedArbiter(account=account, blockNumber=blockNumber)


@external
def removeArbiter(account: address, blockNumber: uint256):
    self._onlyArbiterManager()
    assert self.isArbiter[account], "Not an arbiter"
    self.isArbiter[account] = False
    self.arbiterCount -= 1
    log RemovedArbiter(account=account, blockNumber=blockNumber)


# ---------------------------------------------------------------- fees, windows, deprecation

@external
def setFeeManager(newFeeManager: address):
    assert msg.sender == self.feeManager, "Only fee manager"
    log NewFeeManager(previousManager=self.feeManager, newManager=newFeeManager)
    self.feeManager = newFeeManager


@external
def setBountyFee(newBountyFee: uint256):
    assert msg.sender == self.feeManager, "Only fee manager"
    self.bountyFee = newBountyFee
    log FeesUpdated(bountyFee=newBountyFee, assertionFee=self.assertionFee)


@external
def setAssertionFee(newAssertionFee: uint256):
    assert msg.sender == self.feeManager, "Only fee manager"
    self.assertionFee = newAssertionFee
    log FeesUpdated(bountyFee=self.bountyFee, assertionFee=newAssertionFee)


@external
def setWindowManager(newWindowManager: address):
    assert msg.sender == self.windowManager, "Only window manager"
    log NewWindowManager(previousManager=self.windowManager, newManager=newWindowManager)
    self.windowManager = newWindowManager


@external
def setWindows(newAssertionRevealWindow: uint256, newArbiterVoteWindow: uint256):
    assert msg.sender == self.windowManager, "Only window manager"
    self.assertionRevealWindow = newAssertionRevealWindow
    self.arbiterVoteWindow = newArbiterVoteWindow
    log WindowsUpdated(assertionRevealWindow=newAssertionRevealWindow, arbiterVoteWindow=newArbiterVoteWindow)


@view
@external
def isDeprecator(account: address) -> bool:
    return self.deprecators[account]


@external
def addDeprecator(account: address):
    self._onlyDeprecator()
    assert account != empty(address) and not self.deprecators[account], "Invalid deprecator"
    self.deprecators[account] = True
    log DeprecatorAdded(account=account)


@external
def removeDeprecator(account: address):
    self._onlyDeprecator()
    assert self.deprecators[account], "Not a deprecator"
    self.deprecators[account] = False
    log DeprecatorRemoved(account=account)


@external
def deprecate(_rollover: bool):
    self._onlyDeprecator()
    assert self.deprecatedBlock == 0, "Already deprecated"
    self.rollover = _rollover
    self.deprecatedBlock = block.number
    log Deprecated(rollover=_rollover)


@external
def undeprecate():
    self._onlyDeprecator()
    assert self.deprecatedBlock != 0, "Not deprecated"
    self.rollover = False
    self.deprecatedBlock = 0
    log Undeprecated()


# ---------------------------------------------------------------- helpers

@pure
@internal
def _popcount(x: uint256) -> uint256:
    count: uint256 = 0
    v: uint256 = x
    for i: uint256 in range(256):
        if v == 0:
            break
        v = v & (v - 1)
        count += 1
    return count


@pure
@internal
def _fullMask(n: uint256) -> uint256:
    if n >= 256:
        return max_value(uint256)
    return (1 << n) - 1


@pure
@internal
def _commitment(nonce: uint256, verdicts: uint256, sender: address) -> uint256:
    h: uint256 = convert(keccak256(convert(nonce, bytes32)), uint256)
    x: uint256 = verdicts ^ h ^ convert(sender, uint256)
    return convert(keccak256(convert(x, bytes32)), uint256)


@pure
@external
def calculateCommitment(nonce: uint256, verdicts: uint256, sender: address) -> uint256:
    """
    @notice keccak256(be32(verdicts ^ keccak256(be32(nonce)) ^ uint160(sender)))
    """
    return self._commitment(nonce, verdicts, sender)


@view
@internal
def _exists(guid: uint128) -> bool:
    return self.bounties[guid].author != empty(address)


@view
@internal
def _round(guid: uint128) -> uint256:
    expiration: uint256 = self.bounties[guid].expirationBlock
    reveal_end: uint256 = expiration + self.assertionRevealWindow
    vote_end: uint256 = reveal_end + self.arbiterVoteWindow
    if block.number < expiration:
        return 0
    if block.number < reveal_end:
        return 1
    if block.number < vote_end:
        if self.bounties[guid].quorumReached:
            return 3
        return 2
    return 4


# ---------------------------------------------------------------- bounties

@external
def postBounty(
    guid: uint128,
    artifactType: uint256,
    amount: uint256,
    artifactURI: String[128],
    numArtifacts: uint256,
    durationBlocks: uint256,
    bloom: uint256[8],
    metadata: String[1024],
):
    assert not self.paused, "Contract is paused"
    assert self.deprecatedBlock == 0, "Contract is deprecated"
    assert guid != 0, "Invalid bounty guid"
    assert not self._exists(guid), "Duplicate bounty guid"
    assert artifactType < NUM_ARTIFACT_TYPES, "Invalid artifact type"
    assert numArtifacts > 0 and numArtifacts <= MAX_ARTIFACTS, "Invalid number of artifacts"
    assert amount >= BOUNTY_AMOUNT_MINIMUM * numArtifacts, "Bounty amount below minimum"
    assert len(artifactURI) > 0, "Invalid artifact URI"
    assert durationBlocks > 0 and durationBlocks <= MAX_DURATION, "Invalid bounty duration"

    fee: uint256 = self.bountyFee
    assert extcall Token(token).transferFrom(msg.sender, self, amount + fee), "Token transfer failed"

    expiration: uint256 = block.number + durationBlocks
    self.bounties[guid] = Bounty(
        guid=guid,
        artifactType=convert(artifactType, uint8),
        author=msg.sender,
        amount=amount,
        artifactURI=artifactURI,
        numArtifacts=numArtifacts,
        expirationBlock=expiration,
        assignedArbiter=empty(address),
        quorumReached=False,
        quorumBlock=0,
        quorumMask=0,
        metadata=metadata,
    )
    self.blooms[guid] = bloom
    self.bountyFeePaid[guid] = fee
    self.bountyGuidAt[self.numBounties] = guid
    self.numBounties += 1
    log NewBounty(
        guid=guid,
        artifactType=artifactType,
        author=msg.sender,
        amount=amount,
        artifactURI=artifactURI,
        expirationBlock=expiration,
        metadata=metadata,
    )


@external
def postAssertion(bountyGuid: uint128, bid: DynArray[uint256, MAX_ARTIFACTS], mask: uint256, commitment: uint256):
    assert not self.paused, "Contract is paused"
    assert self._exists(bountyGuid), "Bounty does not exist"
    assert block.number < self.bounties[bountyGuid].expirationBlock, "Bounty inactive"
    assert self.assertionIndexPlusOne[bountyGuid][msg.sender] == 0, "Duplicate assertion"
    index: uint256 = self.numAssertions[bountyGuid]
    assert index < MAX_ASSERTIONS, "Too many assertions"
    n: uint256 = self.bounties[bountyGuid].numArtifacts
    assert mask & ~self._fullMask(n) == 0, "Mask exceeds number of artifacts"
    assert len(bid) == self._popcount(mask), "Bid does not match mask count"

    total: uint256 = 0
    for b: uint256 in bid:
        assert b >= ASSERTION_BID_ARTIFACT_MINIMUM and b <= ASSERTION_BID_ARTIFACT_MAXIMUM, "Bid not between min & max"
        total += b

    fee: uint256 = self.assertionFee
    assert extcall Token(token).transferFrom(msg.sender, self, total + fee), "Token transfer failed"

    self.assertions[bountyGuid][index] = Assertion(
        author=msg.sender, mask=mask, commitment=commitment, nonce=0, verdicts=0, metadata=""
    )
    self.assertionBidByGuid[bountyGuid][index] = bid
    self.assertionFeePaid[bountyGuid][index] = fee
    self.assertionFeesTotal[bountyGuid] += fee
    self.bidTotal[bountyGuid] += total
    self.numAssertions[bountyGuid] = index + 1
    self.assertionIndexPlusOne[bountyGuid][msg.sender] = index + 1
    self.expertAssertionRegistryByGuid[convert(bountyGuid, uint256)][msg.sender] = True
    log NewAssertion(
        bountyGuid=bountyGuid,
        author=msg.sender,
        index=index,
        bid=bid,
        mask=mask,
        numArtifacts=n,
        commitment=commitment,
    )


@external
def revealAssertion(bountyGuid: uint128, assertionId: uint256, nonce: uint256, verdicts: uint256, metadata: String[1024]):
    assert self._exists(bountyGuid), "Bounty does not exist"
    assert assertionId < self.numAssertions[bountyGuid], "Invalid assertion id"
    expiration: uint256 = self.bounties[bountyGuid].expirationBlock
    assert block.number >= expiration, "Bounty still active"
    assert block.number < expiration + self.assertionRevealWindow, "Reveal window closed"
    assert self.assertions[bountyGuid][assertionId].author == msg.sender, "Not assertion author"
    assert nonce != 0, "Invalid nonce"
    assert self.assertions[bountyGuid][assertionId].nonce == 0, "Assertion already revealed"
    assert self._commitment(nonce, verdicts, msg.sender) == self.assertions[bountyGuid][assertionId].commitment, "Commitment mismatch"

    self.assertions[bountyGuid][assertionId].nonce = nonce
    self.assertions[bountyGuid][assertionId].verdicts = verdicts
    self.assertions[bountyGuid][assertionId].metadata = metadata
    log RevealedAssertion(
        bountyGuid=bountyGuid,
        author=msg.sender,
        index=assertionId,
        nonce=nonce,
        verdicts=verdicts,
        numArtifacts=self.bounties[bountyGuid].numArtifacts,
        metadata=metadata,
    )


@external
def voteOnBounty(bountyGuid: uint128, votes: uint256, validBloom: bool):
    assert self._exists(bountyGuid), "Bounty does not exist"
    assert self.isArbiter[msg.sender], "Not an arbiter"
    if staking != empty(address):
        assert staticcall Staking(staking).isEligible(msg.sender), "Arbiter not eligible"
    expiration: uint256 = self.bounties[bountyGuid].expirationBlock
    reveal_end: uint256 = expiration + self.assertionRevealWindow
    assert block.number >= reveal_end, "Voting not open"
    assert block.number < reveal_end + self.arbiterVoteWindow, "Voting window closed"
    key: uint256 = convert(bountyGuid, uint256)
    assert not self.arbiterVoteRegistryByGuid[key][msg.sender], "Arbiter already voted"
    index: uint256 = self.numVotes[bountyGuid]
    assert index < MAX_VOTES, "Too many votes"

    n: uint256 = self.bounties[bountyGuid].numArtifacts
    full: uint256 = self._fullMask(n)
    v: uint256 = votes & full
    self.votes[bountyGuid][index] = Vote(author=msg.sender, votes=v, validBloom=validBloom)
    self.arbiterVoteRegistryByGuid[key][msg.sender] = True
    num: uint256 = index + 1
    self.numVotes[bountyGuid] = num

    # per-artifact quorum (1.5 rule): q >= N - q or b > N - b
    arbiters: uint256 = self.arbiterCount
    qmask: uint256 = 0
    for i: uint256 in range(n, bound=MAX_ARTIFACTS):
        q: uint256 = self.quorumVotesByGuid[bountyGuid][i]
        if (v >> i) & 1 == 1:
            q += 1
            self.quorumVotesByGuid[bountyGuid][i] = q
        self.voteCountByGuid[key][i] = num
        b: uint256 = num - q
        if 2 * q >= arbiters or 2 * b > arbiters:
            qmask |= 1 << i
    self.bounties[bountyGuid].quorumMask = qmask

    if staking != empty(address):
        extcall Staking(staking).recordBounty(msg.sender, bountyGuid, block.number)
    log NewVote(bountyGuid=bountyGuid, votes=v, numArtifacts=n, voter=msg.sender)

    if not self.bounties[bountyGuid].quorumReached and (num >= arbiters or qmask == full):
        self.bounties[bountyGuid].quorumReached = True
        self.bounties[bountyGuid].quorumBlock = block.number - expiration
        log QuorumReached(bountyGuid=bountyGuid)


# ---------------------------------------------------------------- settlement

@view
@internal
def _consensus(guid: uint128, n: uint256, num: uint256) -> uint256:
    # bit i set: the arbiters' consensus is "malicious" (ties count as malicious)
    result: uint256 = 0
    for i: uint256 in range(n, bound=MAX_ARTIFACTS):
        if 2 * self.quorumVotesByGuid[guid][i] >= num:
            result |= 1 << i
    return result


@internal
def _computeSettlement(guid: uint128):
    n: uint256 = self.bounties[guid].numArtifacts
    amount: uint256 = self.bounties[guid].amount
    num_a: uint256 = self.numAssertions[guid]
    num_v: uint256 = self.numVotes[guid]
    bounty_fee: uint256 = self.bountyFeePaid[guid]
    pot: uint256 = bounty_fee + self.assertionFeesTotal[guid] + amount + self.bidTotal[guid]
    amount_per: uint256 = amount // n
    refund: uint256 = 0
    rewards: uint256 = 0

    if num_a == 0:
        refund = amount
        if num_v == 0:
            refund += bounty_fee
    elif num_v == 0:
        # nobody voted: poster gets the fee back, experts their fee, bids and a share
        refund = bounty_fee
        share: uint256 = amount_per // num_a
        for j: uint256 in range(num_a, bound=MAX_ASSERTIONS):
            p: uint256 = self.assertionFeePaid[guid][j]
            for b: uint256 in self.assertionBidByGuid[guid][j]:
                p += share + b
            self.expertPayout[guid][j] = p
            rewards += p
    else:
        consensus: uint256 = self._consensus(guid, n, num_v)
        winner_pool: uint256[MAX_ARTIFACTS] = empty(uint256[MAX_ARTIFACTS])
        loser_pool: uint256[MAX_ARTIFACTS] = empty(uint256[MAX_ARTIFACTS])
        correct_masks: DynArray[uint256, MAX_ASSERTIONS] = []
        asserted: uint256 = 0
        for j: uint256 in range(num_a, bound=MAX_ASSERTIONS):
            mask: uint256 = self.assertions[guid][j].mask
            correct: uint256 = 0
            if self.assertions[guid][j].nonce != 0:
                verdicts: uint256 = self.assertions[guid][j].verdicts & mask
                correct = mask & ~(verdicts ^ consensus)
            correct_masks.append(correct)
            asserted |= mask
            bid: DynArray[uint256, MAX_ARTIFACTS] = self.assertionBidByGuid[guid][j]
            k: uint256 = 0
            for i: uint256 in range(n, bound=MAX_ARTIFACTS):
                if (mask >> i) == 0:
                    break
                if (mask >> i) & 1 == 1:
                    if (correct >> i) & 1 == 1:
                        winner_pool[i] += bid[k]
                    else:
                        loser_pool[i] += bid[k]
                    k += 1
        for j: uint256 in range(num_a, bound=MAX_ASSERTIONS):
            correct: uint256 = correct_masks[j]
            p: uint256 = 0
            if correct != 0:
                mask: uint256 = self.assertions[guid][j].mask
                bid: DynArray[uint256, MAX_ARTIFACTS] = self.assertionBidByGuid[guid][j]
                k: uint256 = 0
                for i: uint256 in range(n, bound=MAX_ARTIFACTS):
                    if (mask >> i) == 0:
                        break
                    if (mask >> i) & 1 == 1:
                        if (correct >> i) & 1 == 1:
                            b: uint256 = bid[k]
                            p += b + b * loser_pool[i] // winner_pool[i] + b * amount_per // winner_pool[i]
                        k += 1
            self.expertPayout[guid][j] = p
            rewards += p
        for i: uint256 in range(n, bound=MAX_ARTIFACTS):
            if (asserted >> i) & 1 == 0:
                refund += amount_per

    self.posterRefund[guid] = refund
    self.arbiterReward[guid] = pot - refund - rewards
    self.settlementComputed[guid] = True


@internal
def _drawArbiter(guid: uint128, vote_end: uint256) -> address:
    num_v: uint256 = self.numVotes[guid]
    if num_v == 0 or block.number > vote_end + VALID_HASH_PERIOD:
        return msg.sender
    seed_block: uint256 = vote_end
    if block.number == vote_end:
        seed_block = block.number - 1
    rand: uint256 = convert(keccak256(concat(blockhash(seed_block), convert(block.number, bytes32))), uint256)
    stakes: DynArray[uint256, MAX_VOTES] = []
    total: uint256 = 0
    for k: uint256 in range(num_v, bound=MAX_VOTES):
        s: uint256 = 0
        if staking != empty(address):
            s = staticcall Staking(staking).balanceOf(self.votes[guid][k].author)
        stakes.append(s)
        total += s
    if total == 0:
        return self.votes[guid][rand % num_v].author
    r: uint256 = rand % total
    acc: uint256 = 0
    for k: uint256 in range(num_v, bound=MAX_VOTES):
        acc += stakes[k]
        if r < acc:
            return self.votes[guid][k].author
    return msg.sender


@external
def settleBounty(bountyGuid: uint128):
    assert self._exists(bountyGuid), "Bounty does not exist"
    assert not self.bountySettled[bountyGuid][msg.sender], "Bounty already settled"
    vote_end: uint256 = self.bounties[bountyGuid].expirationBlock + self.assertionRevealWindow + self.arbiterVoteWindow
    arbiter: bool = self.isArbiter[msg.sender]
    if arbiter:
        assert block.number >= vote_end, "Bounty not yet settleable"
    else:
        assert block.number >= vote_end or self.bounties[bountyGuid].quorumReached, "Bounty not yet settleable"

    if not self.settlementComputed[bountyGuid]:
        self._computeSettlement(bountyGuid)

    payout: uint256 = 0
    if msg.sender == self.bounties[bountyGuid].author:
        payout += self.posterRefund[bountyGuid]
    index: uint256 = self.assertionIndexPlusOne[bountyGuid][msg.sender]
    if index > 0:
        payout += self.expertPayout[bountyGuid][index - 1]
    if arbiter:
        assigned: address = self.bounties[bountyGuid].assignedArbiter
        if assigned == empty(address):
            assigned = self._drawArbiter(bountyGuid, vote_end)
            self.bounties[bountyGuid].assignedArbiter = assigned
        if assigned == msg.sender:
            payout += self.arbiterReward[bountyGuid]

    self.bountySettled[bountyGuid][msg.sender] = True
    if payout > 0:
        assert extcall Token(token).transfer(msg.sender, payout), "Token transfer failed"
    log SettledBounty(bountyGuid=bountyGuid, settler=msg.sender, payout=payout)


# ---------------------------------------------------------------- views

@view
@external
def bountiesByGuid(guid: uint128) -> (uint128, uint8, address, uint256, String[128], uint256, uint256, address, bool, uint256, uint256, String[1024]):
    b: Bounty = self.bounties[guid]
    return (
        b.guid, b.artifactType, b.author, b.amount, b.artifactURI, b.numArtifacts,
        b.expirationBlock, b.assignedArbiter, b.quorumReached, b.quorumBlock, b.quorumMask, b.metadata,
    )


@view
@external
def assertionsByGuid(guid: uint128, index: uint256) -> (address, uint256, uint256, uint256, uint256, String[1024]):
    assert index < self.numAssertions[guid], "Invalid assertion id"
    a: Assertion = self.assertions[guid][index]
    return (a.author, a.mask, a.commitment, a.nonce, a.verdicts, a.metadata)


@view
@external
def getBids(guid: uint128, index: uint256) -> DynArray[uint256, MAX_ARTIFACTS]:
    assert index < self.numAssertions[guid], "Invalid assertion id"
    return self.assertionBidByGuid[guid][index]


@view
@external
def votesByGuid(guid: uint128, index: uint256) -> (address, uint256, bool):
    assert index < self.numVotes[guid], "Invalid vote id"
    v: Vote = self.votes[guid][index]
    return (v.author, v.votes, v.validBloom)


@view
@external
def bloomByGuid(guid: uint128, index: uint256) -> uint256:
    assert index < 8, "Invalid bloom index"
    return self.blooms[guid][index]


@view
@external
def getNumberOfAssertions(guid: uint128) -> uint256:
    return self.numAssertions[guid]


@view
@external
def getNumberOfVotes(guid: uint128) -> uint256:
    return self.numVotes[guid]


@view
@external
def getNumberOfBounties() -> uint256:
    return self.numBounties


@view
@external
def getCurrentRound(guid: uint128) -> uint256:
    assert self._exists(guid), "Bounty does not exist"
    return self._round(guid)


@view
@external
def getBountyGuids(page: uint256) -> DynArray[uint128, MAX_PAGE_SIZE]:
    result: DynArray[uint128, MAX_PAGE_SIZE] = []
    total: uint256 = self.numBounties
    if page >= total:
        return result
    start: uint256 = page * PAGE_SIZE
    if start >= total:
        return result
    count: uint256 = min(PAGE_SIZE, total - start)
    for k: uint256 in range(count, bound=MAX_PAGE_SIZE):
        result.append(self.bountyGuidAt[start + k])
    return result


@view
@external
def getVoters(bountyGuid: uint128) -> DynArray[address, MAX_VOTES]:
    """
    @notice The arbiters who voted on the bounty, in voting order.
    """
    assert self._exists(bountyGuid), "Bounty does not exist"
    voters: DynArray[address, MAX_VOTES] = []
    for k: uint256 in range(self.numVotes[bountyGuid], bound=MAX_VOTES):
        voters.append(self.votes[bountyGuid][k].author)
    return voters


@pure
@internal
def _mostFirst(
    addrs: DynArray[address, MAX_CANDIDATES], counts: DynArray[uint256, MAX_CANDIDATES]
) -> (DynArray[address, MAX_CANDIDATES], DynArray[uint256, MAX_CANDIDATES]):
    # selection sort, highest count first (the first of equal counts wins; the last entry takes
    # the place of the one picked, as in 1.6)
    rest_a: DynArray[address, MAX_CANDIDATES] = addrs
    rest_c: DynArray[uint256, MAX_CANDIDATES] = counts
    out_a: DynArray[address, MAX_CANDIDATES] = []
    out_c: DynArray[uint256, MAX_CANDIDATES] = []
    for step: uint256 in range(len(addrs), bound=MAX_CANDIDATES):
        best: uint256 = 0
        for k: uint256 in range(len(rest_c), bound=MAX_CANDIDATES):
            if rest_c[k] > rest_c[best]:
                best = k
        out_a.append(rest_a[best])
        out_c.append(rest_c[best])
        last: uint256 = len(rest_c) - 1
        rest_a[best] = rest_a[last]
        rest_c[best] = rest_c[last]
        rest_a.pop()
        rest_c.pop()
    return out_a, out_c


@view
@internal
def _tally(voters: bool) -> (DynArray[address, MAX_CANDIDATES], DynArray[uint256, MAX_CANDIDATES], uint256):
    # how often each address posted (voters False) or voted on (voters True) one of the last
    # ARBITER_LOOKBACK_RANGE bounties, most first; and how many bounties that range holds
    total: uint256 = self.numBounties
    assert total > 0, "No bounties have been placed"
    start: uint256 = 0
    if total > ARBITER_LOOKBACK_RANGE:
        start = total - ARBITER_LOOKBACK_RANGE
    addrs: DynArray[address, MAX_CANDIDATES] = []
    counts: DynArray[uint256, MAX_CANDIDATES] = []
    for k: uint256 in range(total - start, bound=MAX_LOOKBACK):
        guid: uint128 = self.bountyGuidAt[start + k]
        seen: uint256 = 1
        if voters:
            seen = self.numVotes[guid]
        for j: uint256 in range(seen, bound=MAX_VOTES):
            who: address = self.bounties[guid].author
            if voters:
                who = self.votes[guid][j].author
            found: bool = False
            for c: uint256 in range(len(addrs), bound=MAX_CANDIDATES):
                if addrs[c] == who:
                    counts[c] += 1
                    found = True
                    break
            if not found and len(addrs) < MAX_CANDIDATES:
                addrs.append(who)
                counts.append(1)
    ordered: DynArray[address, MAX_CANDIDATES] = []
    ordered_counts: DynArray[uint256, MAX_CANDIDATES] = []
    ordered, ordered_counts = self._mostFirst(addrs, counts)
    return ordered, ordered_counts, total - start


@view
@external
def getArbiterCandidates() -> DynArray[address, MAX_CANDIDATES]:
    """
    @notice The posters of the last ARBITER_LOOKBACK_RANGE bounties, most bounties first.
    """
    ordered: DynArray[address, MAX_CANDIDATES] = []
    counts: DynArray[uint256, MAX_CANDIDATES] = []
    considered: uint256 = 0
    ordered, counts, considered = self._tally(False)
    return ordered


@view
@external
def getActiveArbiters() -> (DynArray[address, MAX_CANDIDATES], DynArray[bool, MAX_CANDIDATES]):
    """
    @notice The voters on the last ARBITER_LOOKBACK_RANGE bounties, most votes first, each with
            whether it voted on at least 9 in 10 of those bounties.
    """
    ordered: DynArray[address, MAX_CANDIDATES] = []
    counts: DynArray[uint256, MAX_CANDIDATES] = []
    considered: uint256 = 0
    ordered, counts, considered = self._tally(True)
    active: DynArray[bool, MAX_CANDIDATES] = []
    for count: uint256 in counts:
        active.append(count * 10 >= considered * 9)
    return ordered, active
