// MOCK of the public chain RPCs, for running the official CLI offline in tests (a chain
// cannot exist on this machine). Preloaded with `node --import`; see reference.py.
//
// - JSON-RPC to a non-loopback host: `eth_call` of USDC `balanceOf(address)` on Base Sepolia
//   answers the wallet's balance on the local gateway's testnet ledger
//   (GET $RUN402_API_BASE/billing/v1/accounts/<address>); every other token and chain holds 0;
//   `eth_chainId` / `eth_blockNumber` answer plausibly; any other method is a JSON-RPC error.
// - Any other request to a non-loopback host fails at once, as a machine without network does.
// Requests to loopback hosts (the gateway, *.localhost sites) are untouched.

const realFetch = globalThis.fetch;
const BALANCE_OF = "0x70a08231";
const SEPOLIA_USDC = "0x036cbd53842c5426634e7929541ec2318f3dcf7e";
const CHAIN_IDS = { "sepolia.base.org": "0x14a34", "mainnet.base.org": "0x2105" };

function isLoopback(hostname) {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || h.startsWith("127.");
}

async function ledgerMicros(address) {
  const base = process.env.RUN402_API_BASE;
  if (!base) return 0n;
  // The header marks this as the mock's own read, so a recording stand-in of the API
  // (recording_server.py) can tell it from the CLI's requests.
  const res = await realFetch(`${base}/billing/v1/accounts/${address.toLowerCase()}`, {
    headers: { "x-offline-chain-mock": "ledger-read" },
  });
  if (res.status === 404) return 0n;
  const body = await res.json();
  return BigInt(body.available_usd_micros ?? 0);
}

async function answer(host, call) {
  const reply = (result) => ({ jsonrpc: "2.0", id: call.id, result });
  switch (call.method) {
    case "eth_chainId":
      return reply(CHAIN_IDS[host] ?? "0x1");
    case "eth_blockNumber":
      return reply("0x1");
    case "eth_call": {
      const [tx] = call.params ?? [];
      const data = String(tx?.data ?? tx?.input ?? "");
      if (!data.startsWith(BALANCE_OF)) break;
      const holder = "0x" + data.slice(-40);
      const onSepolia = host === "sepolia.base.org" && String(tx.to).toLowerCase() === SEPOLIA_USDC;
      const micros = onSepolia ? await ledgerMicros(holder) : 0n;
      return reply("0x" + micros.toString(16).padStart(64, "0"));
    }
  }
  return { jsonrpc: "2.0", id: call.id, error: { code: -32601, message: `offline mock: ${call.method}` } };
}

globalThis.fetch = async function offlineFetch(input, init = {}) {
  const url = new URL(typeof input === "string" || input instanceof URL ? String(input) : input.url);
  if (isLoopback(url.hostname)) return realFetch(input, init);
  let body = init.body;
  if (body === undefined && input instanceof Request) body = await input.clone().text();
  let calls;
  try {
    calls = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
  } catch {
    throw new TypeError(`fetch failed: offline (tests reach only loopback hosts), ${url.href}`);
  }
  const batch = Array.isArray(calls);
  const replies = await Promise.all((batch ? calls : [calls]).map((c) => answer(url.hostname, c)));
  return new Response(JSON.stringify(batch ? replies : replies[0]), {
    status: 200, headers: { "content-type": "application/json" },
  });
};
