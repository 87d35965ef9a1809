# pragma version 0.4.3
"""
@title NectarToken (devnet)
@notice ERC20 "Nectar" / "NCT", 18 decimals. Transfers are enabled from the
        start (the 1.6-era token starts with them disabled until the owner
        enables them). Minters (the deployer first) mint.
"""

event Transfer:
    _from: indexed(address)
    to: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

event MinterAdded:
    account: indexed(address)

event MinterRemoved:
    account: indexed(address)

event TransfersEnabled:
    pass

interface ApprovalReceiver:
    def receiveApproval(_from: address, _value: uint256, _token: address, _extraData: Bytes[1024]) -> bool: nonpayable

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
owner: public(address)
transfersEnabled: public(bool)
minters: HashMap[address, bool]


@deploy
def __init__():
    self.name = "Nectar"
    self.symbol = "NCT"
    self.decimals = 18
    self.owner = msg.sender
    log OwnershipTransferred(previousOwner=empty(address), newOwner=msg.sender)
    self.minters[msg.sender] = True
    log MinterAdded(account=msg.sender)
    self.transfersEnabled = True


@internal
def _transfer(_from: address, _to: address, _value: uint256):
    assert self.transfersEnabled, "Transfers disabled"
    assert _to != empty(address), "Invalid recipient"
    assert self.balanceOf[_from] >= _value, "Insufficient balance"
    self.balanceOf[_from] -= _value
    self.balanceOf[_to] += _value
    log Transfer(_from=_from, to=_to, value=_value)


@external
def transfer(to: address, _value: uint256) -> bool:
    self._transfer(msg.sender, to, _value)
    return True


@external
def transferFrom(_from: address, to: address, _value: uint256) -> bool:
    assert self.allowance[_from][msg.sender] >= _value, "Insufficient allowance"
    self.allowance[_from][msg.sender] -= _value
    self._transfer(_from, to, _value)
    return True


@external
def approve(spender: address, _value: uint256) -> bool:
    self.allowance[msg.sender][spender] = _value
    log Approval(owner=msg.sender, spender=spender, value=_value)
    return True


@external
def increaseAllowance(spender: address, addedValue: uint256) -> bool:
    self.allowance[msg.sender][spender] += addedValue
    log Approval(owner=msg.sender, spender=spender, value=self.allowance[msg.sender][spender])
    return True


@external
def decreaseAllowance(spender: address, subtractedValue: uint256) -> bool:
    assert self.allowance[msg.sender][spender] >= subtractedValue, "Allowance below zero"
    self.allowance[msg.sender][spender] -= subtractedValue
    log Approval(owner=msg.sender, spender=spender, value=self.allowance[msg.sender][spender])
    return True


@external
def approveAndCall(spender: address, _value: uint256, extraData: Bytes[1024]) -> bool:
    self.allowance[msg.sender][spender] = _value
    log Approval(owner=msg.sender, spender=spender, value=_value)
    assert extcall ApprovalReceiver(spender).receiveApproval(msg.sender, _value, self, extraData), "Call refused"
    return True


@external
def mint(to: address, _value: uint256) -> bool:
    assert self.minters[msg.sender], "Only minter"
    assert to != empty(address), "Invalid recipient"
    self.totalSupply += _value
    self.balanceOf[to] += _value
    log Transfer(_from=empty(address), to=to, value=_value)
    return True


@view
@external
def isMinter(account: address) -> bool:
    return self.minters[account]


@external
def addMinter(account: address):
    assert self.minters[msg.sender], "Only minter"
    assert account != empty(address) and not self.minters[account], "Invalid minter"
    self.minters[account] = True
    log MinterAdded(account=account)


@external
def renounceMinter():
    assert self.minters[msg.sender], "Only minter"
    self.minters[msg.sender] = False
    log MinterRemoved(account=msg.sender)


@external
def enableTransfers():
    assert msg.sender == self.owner, "Only owner"
    self.transfersEnabled = True
    log TransfersEnabled()


@view
@external
def isOwner() -> bool:
    return msg.sender == self.owner


@external
def transferOwnership(newOwner: address):
    assert msg.sender == self.owner, "Only owner"
    assert newOwner != empty(address), "Invalid owner"
    log OwnershipTransferred(previousOwner=self.owner, newOwner=newOwner)
    self.owner = newOwner


@external
def renounceOwnership():
    assert msg.sender == self.owner, "Only owner"
    log OwnershipTransferred(previousOwner=self.owner, newOwner=empty(address))
    self.owner = empty(address)
