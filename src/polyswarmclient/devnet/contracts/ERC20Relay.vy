# pragma version 0.4.3
"""
@title ERC20Relay (devnet)
@notice One per chain. Holds NCT and pays out transfers seen on the other
        chain once enough verifiers approved them. Charges `fees()` on every
        payout, sent to `feeWallet`.
"""

interface Token:
    def transfer(to: address, _value: uint256) -> bool: nonpayable
    def balanceOf(owner: address) -> uint256: view

event WithdrawalProcessed:
    destination: indexed(address)
    amount: uint256
    txHash: bytes32
    blockHash: bytes32
    blockNumber: uint256

event WithdrawalApproved:
    verifier: indexed(address)
    txHash: bytes32

event NctEthExchangeRateUpdated:
    rate: uint256

event Flush:
    pass

MAX_VERIFIERS: constant(uint256) = 16
GAS_PER_VERIFIER: constant(uint256) = 54301
GAS_BASE: constant(uint256) = 73458
GAS_PRICE: constant(uint256) = 20 * 10 ** 9

struct Withdrawal:
    destination: address
    amount: uint256
    blockHash: bytes32
    blockNumber: uint256
    approvals: uint256
    processed: bool

token: public(immutable(address))
owner: public(address)
feeWallet: public(address)
nctEthExchangeRate: public(uint256)
verifiers: public(DynArray[address, MAX_VERIFIERS])
isVerifier: public(HashMap[address, bool])
requiredVerifiers: public(uint256)
withdrawals: public(HashMap[bytes32, Withdrawal])
approvedBy: HashMap[bytes32, HashMap[address, bool]]


@deploy
def __init__(_token: address, rate: uint256, _feeWallet: address, _verifiers: DynArray[address, MAX_VERIFIERS]):
    assert len(_verifiers) > 0, "No verifiers"
    assert _feeWallet != empty(address), "Invalid fee wallet"
    token = _token
    self.owner = msg.sender
    self.feeWallet = _feeWallet
    self.nctEthExchangeRate = rate
    for v: address in _verifiers:
        assert v != empty(address), "Invalid verifier"
        assert not self.isVerifier[v], "Duplicate verifier"
        self.isVerifier[v] = True
    self.verifiers = _verifiers
    self.requiredVerifiers = max(1, len(_verifiers) * 2 // 3)


@view
@internal
def _fees() -> uint256:
    return (GAS_PER_VERIFIER * len(self.verifiers) + GAS_BASE) * GAS_PRICE * self.nctEthExchangeRate


@view
@external
def fees() -> uint256:
    return self._fees()


@view
@external
def verifierCount() -> uint256:
    return len(self.verifiers)


@external
def setNctEthExchangeRate(rate: uint256):
    assert msg.sender == self.owner, "Only owner"
    self.nctEthExchangeRate = rate
    log NctEthExchangeRateUpdated(rate=rate)


@external
def approveWithdrawal(destination: address, amount: uint256, txHash: bytes32, blockHash: bytes32, blockNumber: uint256):
    assert self.isVerifier[msg.sender], "Not a verifier"
    assert destination != empty(address), "Invalid destination"
    fee: uint256 = self._fees()
    assert amount > fee, "Withdrawal amount below fees"
    w: Withdrawal = self.withdrawals[txHash]
    assert not w.processed, "Withdrawal already processed"
    assert not self.approvedBy[txHash][msg.sender], "Already approved"
    if w.approvals == 0:
        w.destination = destination
        w.amount = amount
        w.blockHash = blockHash
        w.blockNumber = blockNumber
    else:
        assert w.destination == destination and w.amount == amount, "Withdrawal mismatch"
        assert w.blockHash == blockHash and w.blockNumber == blockNumber, "Withdrawal mismatch"
    self.approvedBy[txHash][msg.sender] = True
    w.approvals += 1
    log WithdrawalApproved(verifier=msg.sender, txHash=txHash)
    if w.approvals >= self.requiredVerifiers:
        w.processed = True
        self.withdrawals[txHash] = w
        assert extcall Token(token).transfer(destination, amount - fee), "Token transfer failed"
        if fee > 0:
            assert extcall Token(token).transfer(self.feeWallet, fee), "Token transfer failed"
        log WithdrawalProcessed(destination=destination, amount=amount, txHash=txHash, blockHash=blockHash, blockNumber=blockNumber)
    else:
        self.withdrawals[txHash] = w


@external
def flush():
    assert msg.sender == self.owner, "Only owner"
    bal: uint256 = staticcall Token(token).balanceOf(self)
    if bal > 0:
        assert extcall Token(token).transfer(self.feeWallet, bal), "Token transfer failed"
    log Flush()
