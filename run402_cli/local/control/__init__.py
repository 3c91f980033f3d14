"""The control plane: who is calling (callers: SIWX wallet or project key), SIGN-IN-WITH-X (siwx),
x402 payments (x402) on the local ledger (ledger), tiers, wallets and the faucet, projects,
service health, and the per-tenant limits (limits)."""
