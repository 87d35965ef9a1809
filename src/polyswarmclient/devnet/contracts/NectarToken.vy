# pragma version 0.4.3
"""
@title NectarToken (devnet)
@notice ERC20 "Nectar" / "NCT", 18 decimals. Transfers are enabled from the
        start; the owner can mint.
"""

event Transfer:
    _from: indexed(address)
    to: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

interface ApprovalReceiver:
    def receiveApproval(_from: address, _value: uint256, _token: address, _extraData: Bytes[1024]): nonpayable

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
owner: public(address)
transfersEnabled: public(bool)


@deploy
def __init__():
    self.name = "Nectar"
    self.symbol = "NCT"
    self.decimals = 18
    self.owner = msg.sender
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
def approveAndCall(spender: address, _value: uint256, extraData: Bytes[1024]) -> bool:
    self.allowance[msg.sender][spender] = _value
    log Approval(owner=msg.sender, spender=spender, value=_value)
    extcall ApprovalReceiver(spender).receiveApproval(msg.sender, _value, self, extraData)
    return True


@external
def mint(to: address, _value: uint256) -> bool:
    assert msg.sender == self.owner, "Only owner"
    assert to != empty(address), "Invalid recipient"
    self.totalSupply += _value
    self.balanceOf[to] += _value
    log Transfer(_from=empty(address), to=to, value=_value)
    return True


@external
def enableTransfers():
    assert msg.sender == self.owner, "Only owner"
    self.transfersEnabled = True


@external
def transferOwnership(newOwner: address):
    assert msg.sender == self.owner, "Only owner"
    self.owner = newOwner
