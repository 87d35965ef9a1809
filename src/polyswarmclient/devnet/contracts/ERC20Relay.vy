# pragma version 0.4.3
"""
@title ERC20Relay (devnet, the 1.2 interface)
@notice One per chain. Holds NCT and pays out transfers seen on the other
        chain once enough verifiers approved them (two thirds of them, at
        least one). Charges `fees()` on every payout except one to the fee
        wallet, sent to `feeWallet`. A withdrawal is keyed by
        keccak256(txHash, blockHash, blockNumber) of the transfer it pays,
        and stores the net amount paid, as in 1.2.
        Verifiers also anchor blocks of the other chain (`anchor`): a block is
        anchored once enough verifiers sent the same hash; a different one
        contests the last unfinished anchor.
        Roles as in 1.2: the owner (flush, ownership), the fee manager
        (exchange rate) and the verifier manager (verifiers).
"""

interface Token:
    def transfer(to: address, _value: uint256) -> bool: nonpayable

event WithdrawalProcessed:
    destination: indexed(address)
    amount: uint256
    txHash: bytes32
    blockHash: bytes32
    blockNumber: uint256

event AnchoredBlock:
    blockHash: indexed(bytes32)
    blockNumber: indexed(uint256)

event ContestedBlock:
    blockHash: indexed(bytes32)
    blockNumber: indexed(uint256)

event FeesChanged:
    newFees: uint256

event Flush:
    pass

event AddedVerifier:
    account: indexed(address)

event RemovedVerifier:
    account: indexed(address)

event NewFeeManager:
    previousManager: indexed(address)
    newManager: indexed(address)

event NewVerifierManager:
    previousManager: indexed(address)
    newManager: indexed(address)

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

MAX_VERIFIERS: constant(uint256) = 16
GAS_PER_VERIFIER: constant(uint256) = 54301
GAS_BASE: constant(uint256) = 73458
GAS_PRICE: constant(uint256) = 20 * 10 ** 9

struct Withdrawal:
    destination: address
    amount: uint256
    processed: bool

struct Anchor:
    blockHash: bytes32
    blockNumber: uint256
    processed: bool

VERSION: public(constant(String[8])) = "1.2.0"

token: immutable(address)
owner: public(address)
feeManager: address
verifierManager: address
feeWallet: public(address)
nctEthExchangeRate: public(uint256)
flushBlock: public(uint256)
verifierList: DynArray[address, MAX_VERIFIERS]
isVerifier: public(HashMap[address, bool])
requiredVerifiers: public(uint256)
_withdrawals: HashMap[bytes32, Withdrawal]
withdrawalApprovals: public(HashMap[bytes32, DynArray[address, MAX_VERIFIERS]])
_anchors: HashMap[uint256, Anchor]
numAnchors: uint256
anchorApprovals: public(HashMap[bytes32, DynArray[address, MAX_VERIFIERS]])


@deploy
def __init__(_token: address, rate: uint256, _feeWallet: address, _verifiers: DynArray[address, MAX_VERIFIERS]):
    assert len(_verifiers) > 0, "No verifiers"
    assert _feeWallet != empty(address), "Invalid fee wallet"
    token = _token
    self.owner = msg.sender
    log OwnershipTransferred(previousOwner=empty(address), newOwner=msg.sender)
    self.feeManager = msg.sender
    log NewFeeManager(previousManager=empty(address), newManager=msg.sender)
    self.verifierManager = msg.sender
    log NewVerifierManager(previousManager=empty(address), newManager=msg.sender)
    self.feeWallet = _feeWallet
    self.nctEthExchangeRate = rate
    for v: address in _verifiers:
        self._add(v)


# ---------------------------------------------------------------- roles

@internal
def _onlyOwner():
    assert msg.sender == self.owner, "Only owner"


@internal
def _onlyVerifierManager():
    assert msg.sender == self.verifierManager, "Only verifier manager"


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


@external
def setFeeManager(newFeeManager: address):
    assert msg.sender == self.feeManager, "Only fee manager"
    log NewFeeManager(previousManager=self.feeManager, newManager=newFeeManager)
    self.feeManager = newFeeManager


@external
def setVerifierManager(newVerifierManager: address):
    self._onlyVerifierManager()
    log NewVerifierManager(previousManager=self.verifierManager, newManager=newVerifierManager)
    self.verifierManager = newVerifierManager


# ---------------------------------------------------------------- verifiers and fees

@view
@internal
def _fees() -> uint256:
    return (GAS_PER_VERIFIER * len(self.verifierList) + GAS_BASE) * GAS_PRICE * self.nctEthExchangeRate


@internal
def _add(account: address):
    assert account != empty(address), "Invalid verifier"
    assert not self.isVerifier[account], "Duplicate verifier"
    self.isVerifier[account] = True
    self.verifierList.append(account)
    self.requiredVerifiers = max(1, len(self.verifierList) * 2 // 3)
    log AddedVerifier(account=account)


@internal
def _remove(account: address):
    assert self.isVerifier[account], "Not a verifier"
    assert len(self.verifierList) > 1, "Last verifier"
    kept: DynArray[address, MAX_VERIFIERS] = []
    for v: address in self.verifierList:
        if v != account:
            kept.append(v)
    self.verifierList = kept
    self.isVerifier[account] = False
    self.requiredVerifiers = max(1, len(kept) * 2 // 3)
    log RemovedVerifier(account=account)


@external
def addVerifier(account: address):
    self._onlyVerifierManager()
    self._add(account)
    log FeesChanged(newFees=self._fees())


@external
def removeVerifier(account: address):
    self._onlyVerifierManager()
    self._remove(account)
    log FeesChanged(newFees=self._fees())


@external
def _addVerifier(account: address):
    """
    @notice The same as addVerifier: 1.2 publishes both names.
    """
    self._onlyVerifierManager()
    self._add(account)
    log FeesChanged(newFees=self._fees())


@external
def _removeVerifier(account: address):
    """
    @notice The same as removeVerifier: 1.2 publishes both names.
    """
    self._onlyVerifierManager()
    self._remove(account)
    log FeesChanged(newFees=self._fees())


@view
@external
def fees() -> uint256:
    return self._fees()


@view
@external
def verifierCount() -> uint256:
    return len(self.verifierList)


@external
def setNctEthExchangeRate(rate: uint256):
    assert msg.sender == self.feeManager, "Only fee manager"
    self.nctEthExchangeRate = rate
    log FeesChanged(newFees=self._fees())


# ---------------------------------------------------------------- withdrawals

@pure
@internal
def _key(txHash: bytes32, blockHash: bytes32, blockNumber: uint256) -> bytes32:
    return keccak256(concat(txHash, blockHash, convert(blockNumber, bytes32)))


@external
def approveWithdrawal(destination: address, amount: uint256, txHash: bytes32, blockHash: bytes32, blockNumber: uint256):
    assert self.isVerifier[msg.sender], "Not a verifier"
    assert destination != empty(address), "Invalid destination"
    assert self.flushBlock == 0, "Contract is flushed"
    fee: uint256 = self._fees()
    if destination == self.feeWallet:
        fee = 0
        assert amount > 0, "Withdrawal amount below fees"
    else:
        assert amount > fee, "Withdrawal amount below fees"
    net: uint256 = amount - fee
    key: bytes32 = self._key(txHash, blockHash, blockNumber)
    w: Withdrawal = self._withdrawals[key]
    if w.destination == empty(address):
        w = Withdrawal(destination=destination, amount=net, processed=False)
    assert w.destination == destination and w.amount == net, "Withdrawal mismatch"
    assert not w.processed, "Withdrawal already processed"
    assert msg.sender not in self.withdrawalApprovals[key], "Already approved"
    self.withdrawalApprovals[key].append(msg.sender)
    if len(self.withdrawalApprovals[key]) >= self.requiredVerifiers:
        w.processed = True
        self._withdrawals[key] = w
        assert extcall Token(token).transfer(destination, net), "Token transfer failed"
        if fee > 0:
            assert extcall Token(token).transfer(self.feeWallet, fee), "Token transfer failed"
        log WithdrawalProcessed(destination=destination, amount=net, txHash=txHash, blockHash=blockHash, blockNumber=blockNumber)
    else:
        self._withdrawals[key] = w


@external
def unapproveWithdrawal(txHash: bytes32, blockHash: bytes32, blockNumber: uint256):
    """
    @notice Take back an approval (after a reorganisation of the source chain).
    """
    assert self.isVerifier[msg.sender], "Not a verifier"
    key: bytes32 = self._key(txHash, blockHash, blockNumber)
    assert self._withdrawals[key].destination != empty(address), "No such withdrawal"
    assert not self._withdrawals[key].processed, "Withdrawal already processed"
    kept: DynArray[address, MAX_VERIFIERS] = []
    for v: address in self.withdrawalApprovals[key]:
        if v != msg.sender:
            kept.append(v)
    self.withdrawalApprovals[key] = kept


@view
@external
def withdrawals(key: bytes32) -> (address, uint256, bool):
    """
    @notice (destination, net amount, processed) of the withdrawal keccak256(txHash, blockHash, blockNumber).
    """
    w: Withdrawal = self._withdrawals[key]
    return (w.destination, w.amount, w.processed)


# ---------------------------------------------------------------- anchors

@view
@external
def anchors(index: uint256) -> (bytes32, uint256, bool):
    """
    @notice (blockHash, blockNumber, processed) of the `index`-th anchor.
    """
    assert index < self.numAnchors, "Invalid anchor index"
    a: Anchor = self._anchors[index]
    return (a.blockHash, a.blockNumber, a.processed)


@external
def anchor(blockHash: bytes32, blockNumber: uint256):
    assert self.isVerifier[msg.sender], "Not a verifier"
    n: uint256 = self.numAnchors
    if n == 0 or self._anchors[n - 1].blockHash != blockHash or self._anchors[n - 1].blockNumber != blockNumber:
        if n > 0 and not self._anchors[n - 1].processed:
            log ContestedBlock(blockHash=self._anchors[n - 1].blockHash, blockNumber=self._anchors[n - 1].blockNumber)
        self._anchors[n] = Anchor(blockHash=blockHash, blockNumber=blockNumber, processed=False)
        n += 1
        self.numAnchors = n
    key: bytes32 = keccak256(concat(blockHash, convert(blockNumber, bytes32)))
    assert msg.sender not in self.anchorApprovals[key], "Already approved anchor block"
    self.anchorApprovals[key].append(msg.sender)
    if len(self.anchorApprovals[key]) >= self.requiredVerifiers and not self._anchors[n - 1].processed:
        self._anchors[n - 1].processed = True
        log AnchoredBlock(blockHash=blockHash, blockNumber=blockNumber)


@external
def unanchor():
    assert self.isVerifier[msg.sender], "Not a verifier"
    n: uint256 = self.numAnchors
    assert n > 0, "No anchor"
    a: Anchor = self._anchors[n - 1]
    assert not a.processed, "Block anchor already processed"
    key: bytes32 = keccak256(concat(a.blockHash, convert(a.blockNumber, bytes32)))
    kept: DynArray[address, MAX_VERIFIERS] = []
    for v: address in self.anchorApprovals[key]:
        if v != msg.sender:
            kept.append(v)
    self.anchorApprovals[key] = kept


# ---------------------------------------------------------------- flush

@external
def flush():
    """
    @notice Mark the relay flushed: it pays out nothing more, and the relay daemon may move its funds.
    """
    self._onlyOwner()
    assert self.flushBlock == 0, "Contract already flushed"
    self.flushBlock = block.number
    log Flush()
