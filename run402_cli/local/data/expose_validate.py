"""Validating an expose manifest: every violation at once, as data.

Pure functions over a `Catalog` (what exists: tables and their column types, views,
functions). The catalog comes from the live database, from migration SQL that is parsed —
never executed — or both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Catalog", "POLICIES", "catalog_from_sql", "issue", "normalize_signature", "validate"]

POLICIES = ("user_owns_rows", "public_read_authenticated_write", "public_read_write_UNRESTRICTED", "custom")
ROLES = ("anon", "authenticated")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SENSITIVE = re.compile(r"(pass(word)?|secret|token|api_?key|private|ssn|salary|is_admin|role)", re.I)
_PUBLIC_WRITE = ("public_read_authenticated_write", "public_read_write_UNRESTRICTED")


@dataclass
class Catalog:
    tables: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> {column: type}
    views: set[str] = field(default_factory=set)
    functions: dict[str, list[str]] = field(default_factory=dict)    # name -> [normalized arg types]
    inconclusive: list[str] = field(default_factory=list)

    def merge(self, other: Catalog) -> Catalog:
        tables = {k: dict(v) for k, v in self.tables.items()}
        for name, cols in other.tables.items():
            tables.setdefault(name, {}).update(cols)
        functions = {k: list(v) for k, v in self.functions.items()}
        for name, sigs in other.functions.items():
            functions.setdefault(name, []).extend(s for s in sigs if s not in functions.get(name, []))
        return Catalog(tables, self.views | other.views, functions, self.inconclusive + other.inconclusive)


def issue(type_: str, detail: str, fix: str | None = None, *, severity: str = "error") -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "severity": severity, "detail": detail}
    if fix:
        out["fix"] = fix
    return out


def normalize_signature(sig: str) -> str:
    """'(p_id uuid, n integer)' -> 'uuid,integer' (argument names dropped, spaces folded)."""
    inner = sig.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    types = []
    for part in _split_top(inner):
        words = part.strip().split()
        if not words:
            continue
        if words[0].lower() in ("in", "out", "inout", "variadic"):
            words = words[1:]
        if len(words) > 1 and not _is_type_start(words):
            words = words[1:]  # drop the argument name
        typ = " ".join(words).lower()
        types.append(_TYPE_ALIASES.get(typ, typ))
    return ",".join(types)


_TYPE_ALIASES = {
    "int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
    "varchar": "character varying", "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone", "float8": "double precision", "float4": "real",
    "decimal": "numeric",
}


def _is_type_start(words: list[str]) -> bool:
    two = " ".join(words[:2]).lower()
    return two in ("double precision", "character varying", "bit varying", "timestamp with",
                   "timestamp without", "time with", "time without")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return parts


# Identifier runs are bounded by PostgreSQL's own limit (63 bytes): with unbounded runs, a long
# word after CREATE TABLE backtracks quadratically over request input.
_NAME = r'(?:"?[A-Za-z_][A-Za-z0-9_]{0,62}"?\.)?"?([A-Za-z_][A-Za-z0-9_]{0,62})"?'
_CREATE_TABLE = re.compile(r"create\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?" + _NAME + r"\s*\(", re.I)
_ADD_COLUMN = re.compile(r"alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?" + _NAME +
                         r"\s+add\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?\"?([A-Za-z_][A-Za-z0-9_]{0,62})\"?\s+([A-Za-z]{1,63})", re.I)
_CREATE_VIEW = re.compile(r"create\s+(?:or\s+replace\s+)?(?:materialized\s+)?view\s+(?:if\s+not\s+exists\s+)?" + _NAME, re.I)
_CREATE_FN = re.compile(r"create\s+(?:or\s+replace\s+)?function\s+" + _NAME + r"\s*\(", re.I)
_OPAQUE = re.compile(r"\b(do\s+\$|execute\s+format|execute\s+')", re.I)
_CONSTRAINT_WORDS = {"constraint", "primary", "unique", "check", "foreign", "exclude", "like"}


def _balanced(text: str, start: int) -> str:
    """The text inside the parenthesis opening at text[start-1]."""
    depth, i = 1, start
    while i < len(text) and depth:
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
        i += 1
    return text[start:i - 1]


def catalog_from_sql(sql_text: str) -> Catalog:
    """What a migration would create, read without running it."""
    cat = Catalog()
    for m in _CREATE_TABLE.finditer(sql_text):
        cols: dict[str, str] = {}
        for item in _split_top(_balanced(sql_text, m.end())):
            words = item.strip().split()
            if len(words) >= 2 and words[0].lower() not in _CONSTRAINT_WORDS:
                cols[words[0].strip('"')] = words[1].lower()
        cat.tables.setdefault(m.group(1), {}).update(cols)
    for m in _ADD_COLUMN.finditer(sql_text):
        cat.tables.setdefault(m.group(1), {})[m.group(2)] = m.group(3).lower()
    for m in _CREATE_VIEW.finditer(sql_text):
        cat.views.add(m.group(1))
    for m in _CREATE_FN.finditer(sql_text):
        sig = normalize_signature(_balanced(sql_text, m.end()))
        cat.functions.setdefault(m.group(1), []).append(sig)
    if _OPAQUE.search(sql_text):
        cat.inconclusive.append("The migration runs dynamic SQL (DO blocks or EXECUTE) that cannot be read without running it")
    return cat


def _shape(errors: list[dict[str, Any]], detail: str, fix: str | None = None) -> None:
    errors.append(issue("schema-shape", detail, fix))


def validate(manifest: Any, catalog: Catalog | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(errors, warnings). `catalog=None` means nothing is known to exist: references are not
    checked, and a warning says so."""
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    if not isinstance(manifest, dict):
        _shape(errors, "The manifest must be a JSON object")
        return errors, warnings
    if manifest.get("version") != "1":
        _shape(errors, 'version must be "1"', 'Add "version": "1"')
    unknown = set(manifest) - {"$schema", "version", "tables", "views", "rpcs"}
    if unknown:
        _shape(errors, f"Unknown top-level keys: {', '.join(sorted(unknown))}")
    sections = {}
    for key in ("tables", "views", "rpcs"):
        value = manifest.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            _shape(errors, f"{key} must be an array of objects")
            value = []
        sections[key] = value
    if catalog is None:
        catalog = Catalog()
        if any(sections.values()):
            warnings.append(issue("validation-inconclusive",
                                  "No project and no migration SQL: references to tables, views and functions were not checked",
                                  "Validate against a project, or pass --migration-file", severity="warning"))
        check_refs = False
    else:
        check_refs = True
        for note in catalog.inconclusive:
            warnings.append(issue("validation-inconclusive", note, severity="warning"))
    seen: set[str] = set()
    for t in sections["tables"]:
        _validate_table(t, catalog, check_refs, errors, warnings, seen)
    for v in sections["views"]:
        _validate_view(v, catalog, check_refs, errors, seen)
    for r in sections["rpcs"]:
        _validate_rpc(r, catalog, check_refs, errors)
    return errors, warnings


def _validate_table(t, catalog, check_refs, errors, warnings, seen) -> None:  # type: ignore[no-untyped-def]
    name = t.get("name")
    if not isinstance(name, str) or not _IDENT.match(name):
        _shape(errors, f"Table name {name!r} is not a plain identifier")
        return
    if name in seen:
        _shape(errors, f"{name} is listed twice")
    seen.add(name)
    if not isinstance(t.get("expose"), bool):
        _shape(errors, f"tables[{name}].expose must be true or false")
    policy = t.get("policy")
    if t.get("expose") is True and policy is None:
        _shape(errors, f"tables[{name}]: policy is required when expose is true",
               f"Set policy to one of {', '.join(POLICIES)}")
    if policy is not None and policy not in POLICIES:
        _shape(errors, f"tables[{name}]: unknown policy {policy!r}", f"Use one of {', '.join(POLICIES)}")
    cols = catalog.tables.get(name)
    if check_refs and cols is None:
        errors.append(issue("missing-table", f"Table {name} does not exist",
                            "Create it first (projects sql, or a migration) or fix the name"))
    owner = t.get("owner_column")
    if t.get("force_owner_on_insert") and not owner:
        errors.append(issue("force-owner-without-owner-column",
                            f"tables[{name}]: force_owner_on_insert needs owner_column"))
    if policy == "user_owns_rows":
        if not isinstance(owner, str) or not _IDENT.match(owner):
            _shape(errors, f"tables[{name}]: user_owns_rows requires owner_column")
        elif cols is not None:
            if owner not in cols:
                errors.append(issue("missing-column", f"Column {name}.{owner} does not exist"))
            elif cols[owner] != "uuid":
                warnings.append(issue("owner-column-not-uuid",
                                      f"{name}.{owner} is {cols[owner]}, compared as text with auth.uid()",
                                      "Use a uuid owner column for an index-friendly policy", severity="warning"))
    if policy == "public_read_write_UNRESTRICTED" and t.get("i_understand_this_is_unrestricted") is not True:
        errors.append(issue("unrestricted-ack-required",
                            f"tables[{name}]: anyone can read and write every row",
                            'Add "i_understand_this_is_unrestricted": true, or choose another policy'))
    if policy == "custom":
        custom = t.get("custom_sql")
        if not isinstance(custom, str) or not custom.strip():
            _shape(errors, f"tables[{name}]: custom needs custom_sql with CREATE POLICY statements")
        else:
            # Parsed with PostgreSQL's grammar: anything but CREATE POLICY ON this table is refused,
            # each offending statement its own error (the slot only matters when running them).
            from run402_cli.local.data.tenant_sql import custom_policies

            for bad in custom_policies(custom, "p", name)[1]:
                errors.append(issue("custom-sql-not-policy", bad["message"],
                                    "custom_sql holds only CREATE POLICY ... ON " + name + " statements; "
                                    "grants come from the manifest itself"))
    if policy in _PUBLIC_WRITE and cols:
        risky = sorted(c for c in cols if _SENSITIVE.search(c))
        if risky:
            warnings.append(issue("sensitive-column-public-write",
                                  f"{name} has {', '.join(risky)}, writable by {'anyone' if 'UNRESTRICTED' in policy else 'any signed-in user'}",
                                  "Use user_owns_rows or a custom policy", severity="warning"))


def _validate_view(v, catalog, check_refs, errors, seen) -> None:  # type: ignore[no-untyped-def]
    name, base, select = v.get("name"), v.get("base"), v.get("select")
    if not isinstance(name, str) or not _IDENT.match(name):
        _shape(errors, f"View name {name!r} is not a plain identifier")
        return
    if name in seen:
        _shape(errors, f"{name} is listed twice (as a table or view)")
    seen.add(name)
    if not isinstance(base, str) or not _IDENT.match(base):
        _shape(errors, f"views[{name}].base must name a table")
        return
    if not isinstance(select, list) or not select or not all(isinstance(c, str) and _IDENT.match(c) for c in select):
        _shape(errors, f"views[{name}].select must be a non-empty array of column names")
        select = []
    flt = v.get("filter")
    if flt is not None:
        from run402_cli.local.data.tenant_sql import view_filter

        if not isinstance(flt, str) or view_filter(flt) is None:
            _shape(errors, f"views[{name}].filter must be one SQL condition (a WHERE clause, nothing more)")
    if "expose" in v and not isinstance(v["expose"], bool):
        _shape(errors, f"views[{name}].expose must be true or false")
    if check_refs:
        cols = catalog.tables.get(base)
        if cols is None:
            errors.append(issue("missing-view-base", f"View {name}: base table {base} does not exist"))
        else:
            for c in select:
                if c not in cols:
                    errors.append(issue("missing-column", f"View {name}: column {base}.{c} does not exist"))


def _validate_rpc(r, catalog, check_refs, errors) -> None:  # type: ignore[no-untyped-def]
    name, sig, grant_to = r.get("name"), r.get("signature"), r.get("grant_to")
    if not isinstance(name, str) or not _IDENT.match(name):
        _shape(errors, f"RPC name {name!r} is not a plain identifier")
        return
    if sig is not None and (not isinstance(sig, str) or not sig.strip().startswith("(") or ";" in sig):
        _shape(errors, f"rpcs[{name}].signature must look like \"(arg type, ...)\" or \"()\"")
        sig = None
    if not isinstance(grant_to, list) or not all(isinstance(g, str) for g in grant_to):
        _shape(errors, f"rpcs[{name}].grant_to must be an array of role names")
        grant_to = []
    for role in grant_to:
        if role not in ROLES:
            errors.append(issue("grant-to-role-unknown", f"rpcs[{name}]: unknown role {role!r}",
                                f"Use {' or '.join(ROLES)}"))
    if check_refs:
        overloads = catalog.functions.get(name)
        if not overloads:
            errors.append(issue("missing-rpc", f"Function {name} does not exist"))
        elif sig is None and len(overloads) > 1:
            errors.append(issue("ambiguous-rpc", f"Function {name} has {len(overloads)} overloads",
                                "Add a signature"))
        elif sig is not None and normalize_signature(sig) not in overloads:
            errors.append(issue("missing-rpc", f"Function {name}{sig} does not exist",
                                f"Known signatures: {', '.join('(' + o + ')' for o in overloads)}"))
