"""On-chain USDC balances over JSON-RPC (`eth_call` of `balanceOf`), for `init`, `status` and
`allowance fund|balance`.

Where the RPC lives, per network:
1. `RUN402_BASE_SEPOLIA_RPC_URL` / `RUN402_BASE_RPC_URL`, when set;
2. else, when the API base is loopback (the local gateway), `<api_base>/rpc/v1/84532` resp.
   `/rpc/v1/8453`: the gateway is its own testnet chain and serves `eth_chainId` and
   `eth_call` balanceOf for its ledger;
3. else the public `https://sepolia.base.org` / `https://mainnet.base.org`.

Every failure (no answer, an RPC error, a malformed result) is `None`: balances are advisory
and no command fails because a chain is unreachable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from run402_cli.api.client import Client
from run402_cli.config import Settings
from run402_cli.errors import Run402Error

__all__ = ["NETWORKS", "Network", "rpc_url", "usdc_balance_micros", "wait_for_balance"]

BALANCE_OF_SELECTOR = "0x70a08231"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Network:
    name: str
    chain_id: int
    usdc: str
    env_var: str
    public_rpc: str


NETWORKS: dict[str, Network] = {
    "base-sepolia": Network(
        "base-sepolia", 84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "RUN402_BASE_SEPOLIA_RPC_URL", "https://sepolia.base.org",
    ),
    "base-mainnet": Network(
        "base-mainnet", 8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "RUN402_BASE_RPC_URL", "https://mainnet.base.org",
    ),
}


def rpc_url(settings: Settings, network: str) -> str:
    """The JSON-RPC endpoint for `network` ("base-sepolia" or "base-mainnet")."""
    net = NETWORKS[network]
    explicit = settings.env.get(net.env_var)
    if explicit:
        return explicit
    try:
        base = settings.api_base
    except Run402Error:
        base = None
    if base and urlsplit(base).hostname in _LOOPBACK:
        return f"{base}/rpc/v1/{net.chain_id}"
    return net.public_rpc


def _call_data(address: str) -> str:
    addr = address.lower().removeprefix("0x")
    if len(addr) != 40 or any(c not in "0123456789abcdef" for c in addr):
        raise ValueError("not an address")
    return BALANCE_OF_SELECTOR + addr.rjust(64, "0")


def _read(client: Client, url: str, net: Network, address: str) -> int | None:
    try:
        body = client.request(
            "POST", "",
            json={
                "jsonrpc": "2.0", "id": 1, "method": "eth_call",
                "params": [{"to": net.usdc, "data": _call_data(address)}, "latest"],
            },
            wallet_auth=False, base=url, context=f"reading {net.name} USDC balance",
        )
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, str) or not result.startswith("0x") or len(result) <= 2:
            return None
        return int(result, 16)
    except (Run402Error, ValueError, TypeError):
        return None


def usdc_balance_micros(
    settings: Settings, network: str, address: str | None = None, *, client: Client | None = None
) -> int | None:
    """USDC (6 decimals, so micro-USD) held by `address` (default: the allowance) on
    `network`, or None when it cannot be read."""
    if network not in NETWORKS:
        return None
    try:
        if address is None:
            allowance = settings.allowance()
            if allowance is None:
                return None
            address = allowance.address
        url = rpc_url(settings, network)
    except Run402Error:
        return None
    own = client is None
    c = client or Client(settings, base=url)
    try:
        return _read(c, url, NETWORKS[network], address)
    finally:
        if own:
            c.close()


def wait_for_balance(
    settings: Settings,
    network: str,
    address: str,
    *,
    above: int,
    interval: float = 1.0,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, int | None]:
    """Poll the balance until it exceeds `above` or `timeout` seconds pass (first read at
    once, then every `interval`). Returns (confirmed, last balance read or None)."""
    deadline = clock() + timeout
    url = rpc_url(settings, network)
    client = Client(settings, base=url)
    last: int | None = None
    try:
        while True:
            value = _read(client, url, NETWORKS[network], address)
            if value is not None:
                last = value
                if value > above:
                    return True, value
            if clock() + interval > deadline:
                return False, last
            sleep(interval)
    finally:
        client.close()
