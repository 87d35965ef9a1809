# pragma version 0.4.3
"""
@title BountyRegistry (devnet, 1.6-compatible ABI)
@notice Bounties, commit-reveal assertions, arbiter votes and settlement.
        Rules follow BountyRegistry 1.5 with a single bounty amount that is
        spread evenly over the artifacts (amount[i] = amount / numArtifacts).
        Rounds: 0 assertion (block < E), 1 reveal (E <= block < E+R),
        2 voting (E+R <= block < E+R+V), 3 voting with quorum, 4 finished.
"""

interface Token:
    def transfer(to: address, _value: uint256) -> bool: nonpayable
    def transferFrom(_from: address, to: address, _value: uint256) -> bool: nonpayable

interface Staking:
    def balanceOf(staker: address) -> uint256: view
    def recordBounty(guid: uint128, blockNumber: uint256): nonpayable
    def recordBountyVote(arbiter: address, guid: uint128): nonpayable

# None of these event arguments are indexed (as in the 1.6 ABI).
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

event ArbiterAdded:
    arbiter: address

event ArbiterRemoved:
    arbiter: address

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

MAX_ARTIFACTS: constant(uint256) = 256
MAX_ASSERTIONS: public(constant(uint256)) = 32
MAX_VOTES: public(constant(uint256)) = 64
MAX_PAGE_SIZE: constant(uint256) = 256
VALID_HASH_PERIOD: public(constant(uint256)) = 256
NUM_ARTIFACT_TYPES: constant(uint256) = 2

token: public(immutable(address))
staking: public(immutable(address))
BOUNTY_AMOUNT_MINIMUM: public(immutable(uint256))
ASSERTION_BID_ARTIFACT_MINIMUM: public(immutable(uint256))
ASSERTION_BID_ARTIFACT_MAXIMUM: public(immutable(uint256))
MAX_DURATION: public(immutable(uint256))
ARBITER_LOOKBACK_RANGE: public(immutable(uint256))
PAGE_SIZE: public(immutable(uint256))

owner: public(address)
bountyFee: public(uint256)
assertionFee: public(uint256)
assertionRevealWindow: public(uint256)
arbiterVoteWindow: public(uint256)
deprecatedBlock: public(uint256)
deprecated: public(bool)
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
bids: HashMap[uint128, HashMap[uint256, DynArray[uint256, MAX_ARTIFACTS]]]
assertionFeePaid: HashMap[uint128, HashMap[uint256, uint256]]
numAssertions: HashMap[uint128, uint256]
# index + 1 of the sender's assertion, 0 when none
assertionIndexPlusOne: HashMap[uint128, HashMap[address, uint256]]

votes: HashMap[uint128, HashMap[uint256, Vote]]
numVotes: HashMap[uint128, uint256]
hasVoted: HashMap[uint128, HashMap[address, bool]]

settled: HashMap[uint128, HashMap[address, bool]]
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
    token = _token
    staking = _staking
    BOUNTY_AMOUNT_MINIMUM = bountyAmountMinimum
    ASSERTION_BID_ARTIFACT_MINIMUM = assertionBidMinimum
    ASSERTION_BID_ARTIFACT_MAXIMUM = assertionBidMaximum
    MAX_DURATION = maxDuration
    ARBITER_LOOKBACK_RANGE = arbiterLookbackRange
    PAGE_SIZE = pageSize
    self.owner = msg.sender
    self.bountyFee = _bountyFee
    self.assertionFee = _assertionFee
    self.assertionRevealWindow = _assertionRevealWindow
    self.arbiterVoteWindow = _arbiterVoteWindow


# ---------------------------------------------------------------- admin

@internal
def _onlyOwner():
    assert msg.sender == self.owner, "Only owner"


@external
def transferOwnership(newOwner: address):
    self._onlyOwner()
    self.owner = newOwner


@external
def addArbiter(arbiter: address):
    self._onlyOwner()
    assert arbiter != empty(address), "Invalid arbiter"
    assert not self.isArbiter[arbiter], "Already an arbiter"
    self.isArbiter[arbiter] = True
    self.arbiterCount += 1
    log ArbiterAdded(arbiter=arbiter)


@external
def removeArbiter(arbiter: address):
    self._onlyOwner()
    assert self.isArbiter[arbiter], "Not an arbiter"
    self.isArbiter[arbiter] = False
    self.arbiterCount -= 1
    log ArbiterRemoved(arbiter=arbiter)


@external
def setFees(_bountyFee: uint256, _assertionFee: uint256):
    self._onlyOwner()
    self.bountyFee = _bountyFee
    self.assertionFee = _assertionFee
    log FeesUpdated(bountyFee=_bountyFee, assertionFee=_assertionFee)


@external
def setWindows(_assertionRevealWindow: uint256, _arbiterVoteWindow: uint256):
    self._onlyOwner()
    self.assertionRevealWindow = _assertionRevealWindow
    self.arbiterVoteWindow = _arbiterVoteWindow
    log WindowsUpdated(assertionRevealWindow=_assertionRevealWindow, arbiterVoteWindow=_arbiterVoteWindow)


@external
def deprecate(_rollover: bool):
    self._onlyOwner()
    assert not self.deprecated, "Already deprecated"
    self.deprecated = True
    self.rollover = _rollover
    self.deprecatedBlock = block.number
    log Deprecated(rollover=_rollover)


@external
def undeprecate():
    self._onlyOwner()
    assert self.deprecated, "Not deprecated"
    self.deprecated = False
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
    assert not self.deprecated, "Contract is deprecated"
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
    if staking != empty(address):
        extcall Staking(staking).recordBounty(guid, block.number)
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
    self.bids[bountyGuid][index] = bid
    self.assertionFeePaid[bountyGuid][index] = fee
    self.assertionFeesTotal[bountyGuid] += fee
    self.bidTotal[bountyGuid] += total
    self.numAssertions[bountyGuid] = index + 1
    self.assertionIndexPlusOne[bountyGuid][msg.sender] = index + 1
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
    expiration: uint256 = self.bounties[bountyGuid].expirationBlock
    reveal_end: uint256 = expiration + self.assertionRevealWindow
    assert block.number >= reveal_end, "Voting not open"
    assert block.number < reveal_end + self.arbiterVoteWindow, "Voting window closed"
    assert not self.hasVoted[bountyGuid][msg.sender], "Arbiter already voted"
    index: uint256 = self.numVotes[bountyGuid]
    assert index < MAX_VOTES, "Too many votes"

    n: uint256 = self.bounties[bountyGuid].numArtifacts
    full: uint256 = self._fullMask(n)
    v: uint256 = votes & full
    self.votes[bountyGuid][index] = Vote(author=msg.sender, votes=v, validBloom=validBloom)
    self.hasVoted[bountyGuid][msg.sender] = True
    num: uint256 = index + 1
    self.numVotes[bountyGuid] = num

    # per-artifact quorum (1.5 rule): q >= N - q or b > N - b
    all_votes: DynArray[uint256, MAX_VOTES] = []
    for k: uint256 in range(num, bound=MAX_VOTES):
        all_votes.append(self.votes[bountyGuid][k].votes)
    arbiters: uint256 = self.arbiterCount
    qmask: uint256 = 0
    for i: uint256 in range(n, bound=MAX_ARTIFACTS):
        q: uint256 = 0
        for w: uint256 in all_votes:
            q += (w >> i) & 1
        b: uint256 = num - q
        if 2 * q >= arbiters or 2 * b > arbiters:
            qmask |= 1 << i
    self.bounties[bountyGuid].quorumMask = qmask

    if staking != empty(address):
        extcall Staking(staking).recordBountyVote(msg.sender, bountyGuid)
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
    all_votes: DynArray[uint256, MAX_VOTES] = []
    for k: uint256 in range(num, bound=MAX_VOTES):
        all_votes.append(self.votes[guid][k].votes)
    result: uint256 = 0
    for i: uint256 in range(n, bound=MAX_ARTIFACTS):
        q: uint256 = 0
        for w: uint256 in all_votes:
            q += (w >> i) & 1
        if 2 * q >= num:
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
            for b: uint256 in self.bids[guid][j]:
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
            bid: DynArray[uint256, MAX_ARTIFACTS] = self.bids[guid][j]
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
                bid: DynArray[uint256, MAX_ARTIFACTS] = self.bids[guid][j]
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
    assert not self.settled[bountyGuid][msg.sender], "Bounty already settled"
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

    self.settled[bountyGuid][msg.sender] = True
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
    return self.bids[guid][index]


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
def hasSettled(guid: uint128, settler: address) -> bool:
    return self.settled[guid][settler]
