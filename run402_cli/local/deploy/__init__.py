"""Deploys: `/apply/v1` plans and commits (apply_plan, apply_commit, with apply_spec, apply_state,
apply_store), `/content/v1` uploads (content) into the content-addressed store (cas), releases
and operations (releases), and what they share (deploy_common)."""
