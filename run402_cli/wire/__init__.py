"""The contract both sides share: the CLI (client) and the local gateway (server) import these
modules; neither re-implements them, and each rule is tested once.

- `eth`: keccak-256, EIP-55 addresses, secp256k1 signing and recovery on libsecp256k1
  (coincurve), EIP-191 personal messages and the EIP-712 TransferWithAuthorization digest that
  x402 payments sign.
- `siwx`: the SIGN-IN-WITH-X (EIP-4361) message, built to sign and rebuilt to verify.
- `x402`: the x402 v2 headers (base64 JSON) and the EIP-3009 typed data a payment signs.
- `release`: the ReleaseSpec rules (release file paths, route patterns, subdomains, secret
  keys, locales) the CLI checks before sending and the gateway before trusting.
- `secrets`: project secret keys and values (pattern, 4096-byte cap) and their error codes.
- `content_types`: a release file's (or an asset's) content type from its extension.
- `assets`: blob storage: key rules, immutable keys, metadata, listing filters, SRI / ETag /
  Content-Digest, the SDK AssetRef and its HTML tags.
- `cron`: function schedules (5-field cron): parsing, the next run, the tier preflight's gap.
- `functions`: the function lifecycle rules (names, deps, log request ids) and tier caps.
- `times`: timestamps as the API writes them.
- `errors`: the error envelope a non-2xx answer carries (written by the gateway, read by the
  CLI) and the error codes a client branches on.
"""
