"""The local gateway (server side), in rooms; `routes.py` is the one table of every path.

    app.py, routes.py   build_app(ctx): middleware, error handlers, the ordered route table
    context.py          GatewayContext, what every handler gets (request.app.state.ctx)
    errors.py           GatewayError and the one envelope renderer
    http_body.py        body caps, JSON depth and the JSON-only rule, before any handler reads
    runtime/            PostgreSQL cluster, PostgREST, the gateway process, supervisor, pool
    control/            who is calling, wallets, SIWX, x402, ledger, tiers, projects, limits
    data/               REST proxy, expose manifest, tenant SQL, end-user auth, mailbox
    deploy/             plans, commits, content uploads, CAS, releases
    web/                sites served by Host, route matching, subdomains

Nothing outside `run402_cli/commands/local.py` imports this package; it never imports
`run402_cli.commands`. Importing it (or a room) imports nothing else: `run402 local status`
reaches `runtime/supervisor.py` without the [local] extra.
"""
