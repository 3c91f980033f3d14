"""A tenant's function, written by an attacker: it must not reach the gateway's files, another
project's secrets, keys or rows, other workers, or anything of the installation."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.local._support import provision, sql

pytestmark = pytest.mark.usefixtures("api")

PROBE = """
import fs from "node:fs";
import cp from "node:child_process";
export default async (req) => {
  const { targets, other } = await req.json();
  const out = { env: Object.keys(process.env).sort(), reads: {}, exec: null, other: null, uid: process.getuid() };
  for (const t of targets) {
    try { out.reads[t] = fs.readFileSync(t, "utf8").slice(0, 40); } catch (e) { out.reads[t] = "refused:" + (e.code || e.message); }
  }
  try { out.exec = cp.execSync("id").toString(); } catch (e) { out.exec = "refused:" + (e.code || e.message); }
  try { out.listing = fs.readdirSync("/proc").filter((n) => /^\\d+$/.test(n)).length; } catch (e) { out.listing = "refused:" + (e.code || e.message); }
  const r = await fetch(process.env.RUN402_API_BASE + "/rest/v1/private_stuff", { headers: { apikey: process.env.RUN402_ANON_KEY } });
  const o = await fetch(process.env.RUN402_API_BASE + "/projects/v1/admin/" + other + "/sql", {
    method: "POST", headers: { Authorization: "Bearer " + process.env.RUN402_SERVICE_KEY, "Content-Type": "text/plain" },
    body: "select * from private_stuff" });
  out.other = { rest: r.status, sql: o.status };
  return Response.json(out);
};
"""


def _deploy(api_base, project, name, code):
    r = httpx.post(f"{api_base}/projects/v1/admin/{project['project_id']}/functions",
                   headers={"Authorization": f"Bearer {project['service_key']}"}, json={"name": name, "code": code},
                   timeout=120)
    assert r.status_code == 201, r.text


def test_a_function_reaches_nothing_outside_its_project(api):
    attacker, victim = provision("attacker"), provision("victim")
    sql(victim, "create table private_stuff (v text); insert into private_stuff values ('crown jewels')")
    auth = {"Authorization": f"Bearer {victim['service_key']}"}
    httpx.post(f"{api.api_base}/projects/v1/admin/{victim['project_id']}/secrets", headers=auth,
               json={"key": "VICTIM_TOKEN", "value": "victim-secret-value"}).raise_for_status()
    _deploy(api.api_base, victim, "holder", "export default async () => Response.json({ t: process.env.VICTIM_TOKEN })")
    # The victim's function is warm (its worker holds the secret) while the attacker probes.
    victim_call = httpx.post(f"{api.api_base}/functions/v1/holder", headers={"apikey": victim["service_key"]})
    assert victim_call.json() == {"t": "victim-secret-value"}
    _deploy(api.api_base, attacker, "probe", PROBE)
    local_dir = str(api.local_dir)
    targets = [os.path.join(local_dir, "gateway.secret.json"), os.path.join(local_dir, "state.json"),
               "/etc/shadow", "/proc/self/environ"]
    # Every other worker's environment and memory map, by pid.
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    targets += [f"/proc/{p}/environ" for p in pids[-200:]]
    r = httpx.post(f"{api.api_base}/functions/v1/probe", headers={"apikey": attacker["service_key"]},
                   json={"targets": targets, "other": victim["project_id"]}, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["env"] == sorted(["NODE_ENV", "TZ", "RUN402_API_BASE", "RUN402_PROJECT_ID", "RUN402_ANON_KEY",
                                 "RUN402_SERVICE_KEY", "RUN402_JWT_SECRET"])
    assert all(v.startswith("refused:") for v in out["reads"].values()), out["reads"]
    assert out["exec"].startswith("refused:")
    assert out["other"] == {"rest": 404, "sql": 403} or (out["other"]["rest"] >= 400 and out["other"]["sql"] in (401, 403))
    blob = json.dumps(out)
    assert "victim-secret-value" not in blob and "crown jewels" not in blob
    if os.geteuid() == 0:  # as root, each project's workers run as a uid of their own
        assert out["uid"] != 0


def test_the_environment_holds_only_its_own_project(api):
    a, b = provision("env-a"), provision("env-b")
    code = "export default async () => Response.json(process.env)"
    _deploy(api.api_base, a, "env", code)
    env = httpx.post(f"{api.api_base}/functions/v1/env", headers={"apikey": a["service_key"]}).json()
    assert env["RUN402_PROJECT_ID"] == a["project_id"]
    assert b["project_id"] not in json.dumps(env)
    import jwt

    claims = jwt.decode(env["RUN402_SERVICE_KEY"], env["RUN402_JWT_SECRET"], algorithms=["HS256"])
    assert claims["project_id"] == a["project_id"] and claims["role"] == "service_role"
    # The JWT secret is the project's own: it does not verify project B's keys.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(b["anon_key"], env["RUN402_JWT_SECRET"], algorithms=["HS256"])
    # B's key cannot invoke A's function (the function is looked up in the key's project).
    other = httpx.post(f"{api.api_base}/functions/v1/env", headers={"apikey": b["service_key"]})
    assert other.status_code == 404
    assert httpx.post(f"{api.api_base}/functions/v1/env").status_code == 401
