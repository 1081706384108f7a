#!/usr/bin/env python3
"""Generate src/protocol/wire_schema.rs from kafka-protocol 0.18.0's generated decoders.

The gateway must bound every length and count in a frame *before* handing it to kafka-protocol,
whose decoders call `Vec::with_capacity(n)` with `n` taken from the wire. To do that it needs a
description of every request/response body that matches, version by version, what the decoder
reads. This script derives that description from the decoder source itself (not from Apache
Kafka's JSON specs): it tokenizes every `src/messages/*_request.rs` / `*_response.rs`, parses each
`impl Decodable for X { fn decode(..) }` body with a small grammar that accepts exactly the shapes
the generator emits, evaluates every `if version ...` condition for every version, and joins the
result with the struct definitions (for nullability and nested struct types).

Anything the grammar does not recognise is a hard error: the output must never be a guess.

Usage: python3 scripts/gen-wire-schema.py   (run from anywhere; writes into this repository)
"""

from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

CRATE = "kafka-protocol-0.18.0"
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "src" / "protocol" / "wire_schema.rs"
# Versions are evaluated over this range; the generated checks use small literals only.
VERSION_SPACE = range(0, 128)
# Newtypes declared in kafka-protocol's messages.rs, mapped to their inner type (filled at runtime).
NEWTYPES: dict[str, str] = {}


class SchemaError(Exception):
    pass


def fail(msg: str) -> None:
    raise SchemaError(msg)


# ---------------------------------------------------------------------------------------------
# Locating the crate
# ---------------------------------------------------------------------------------------------


def locate_crate() -> Path:
    homes = []
    if os.environ.get("CARGO_HOME"):
        homes.append(Path(os.environ["CARGO_HOME"]))
    homes.append(Path.home() / ".cargo")
    for home in homes:
        hits = sorted(glob.glob(str(home / "registry" / "src" / "*" / CRATE)))
        for hit in hits:
            if (Path(hit) / "src" / "messages.rs").is_file():
                return Path(hit)
    fail(f"cannot find {CRATE} under $CARGO_HOME or ~/.cargo/registry/src/*/ (run `cargo fetch`)")
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<life>'[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>\d+)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>::|=>|->|&&|\|\||>=|<=|!=|==|\.\.|[{}()\[\];,?.=!<>:\-+&|*\#/])
    """,
    re.VERBOSE,
)


def tokenize(text: str, where: str) -> list[str]:
    out = []
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            fail(f"{where}:{line}: cannot tokenize {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup in ("ws", "comment"):
            continue
        out.append(m.group())
    return out


def toks(s: str) -> list[str]:
    return tokenize(s, "<template>")


class Parser:
    def __init__(self, tokens: list[str], where: str, pos: int = 0):
        self.t = tokens
        self.pos = pos
        self.where = where

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.t[i] if i < len(self.t) else "<eof>"

    def next(self) -> str:
        tok = self.peek()
        self.pos += 1
        return tok

    def at(self, template: str) -> bool:
        seq = toks(template)
        return self.t[self.pos : self.pos + len(seq)] == seq

    def expect(self, template: str) -> None:
        for want in toks(template):
            got = self.next()
            if want == "STR":
                if not got.startswith('"'):
                    self.error(f"expected a string literal, found {got!r}")
            elif got != want:
                self.error(f"expected {want!r} (in {template!r}), found {got!r}")

    def ident(self) -> str:
        tok = self.next()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            self.error(f"expected an identifier, found {tok!r}")
        return tok

    def number(self) -> int:
        tok = self.next()
        if not tok.isdigit():
            self.error(f"expected a number, found {tok!r}")
        return int(tok)

    def error(self, msg: str) -> None:
        ctx = " ".join(self.t[max(0, self.pos - 12) : self.pos + 6])
        fail(f"{self.where}: {msg}\n    near: {ctx}")


# ---------------------------------------------------------------------------------------------
# Version conditions: `version OP N` joined with && / ||
# ---------------------------------------------------------------------------------------------

OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def parse_cond(p: Parser):
    """Parses up to (not including) the `{` that opens the guarded block."""

    def cmp():
        p.expect("version")
        op = p.next()
        if op not in OPS:
            p.error(f"unsupported comparison {op!r}")
        neg = False
        if p.peek() == "-":
            p.next()
            neg = True
        n = p.number()
        n = -n if neg else n
        return ("cmp", op, n)

    def conj():
        terms = [cmp()]
        while p.peek() == "&&":
            p.next()
            terms.append(cmp())
        return ("and", terms)

    disj = [conj()]
    while p.peek() == "||":
        p.next()
        disj.append(conj())
    if p.peek() != "{":
        p.error(f"unexpected token {p.peek()!r} in a version condition")
    return ("or", disj)


def eval_cond(cond, v: int) -> bool:
    kind = cond[0]
    if kind == "cmp":
        return OPS[cond[1]](v, cond[2])
    if kind == "and":
        return all(eval_cond(c, v) for c in cond[1])
    if kind == "or":
        return any(eval_cond(c, v) for c in cond[1])
    raise AssertionError(kind)


def contiguous(versions: list[int], what: str) -> tuple[int, int]:
    if not versions:
        fail(f"{what}: empty version set")
    lo, hi = min(versions), max(versions)
    if versions != list(range(lo, hi + 1)):
        fail(f"{what}: version set is not contiguous: {versions}")
    return lo, hi


# ---------------------------------------------------------------------------------------------
# Decoder expressions
# ---------------------------------------------------------------------------------------------

PRIMS = {"Int8", "Int16", "UInt16", "Int32", "Int64", "UInt32", "Float64", "Boolean", "Uuid",
         "VarInt", "VarLong", "UnsignedVarInt", "String", "CompactString", "Bytes", "CompactBytes"}
CONTAINERS = {"Array", "CompactArray"}
STRUCTS = {"Struct", "OptionStruct"}


def parse_wire_ty(p: Parser):
    """`types::X`, `types::Array(types::X)`, `types::Struct { version }`."""
    p.expect("types ::")
    name = p.ident()
    if name in PRIMS:
        return (name,)
    if name in CONTAINERS:
        p.expect("(")
        inner = parse_wire_ty(p)
        p.expect(")")
        if inner[0] in CONTAINERS or inner[0] == "OptionStruct":
            p.error(f"unsupported element type {inner} inside {name}")
        return (name, inner)
    if name in STRUCTS:
        p.expect("{ version }")
        return (name,)
    p.error(f"unknown wire type types::{name}")
    raise AssertionError("unreachable")


def parse_decode(p: Parser):
    ty = parse_wire_ty(p)
    p.expect(". decode ( buf ) ?")
    return ty


def parse_default(p: Parser, terminator: str):
    """A decode-free expression (the value used when the field is absent)."""
    depth = 0
    start = p.pos
    while True:
        tok = p.peek()
        if depth == 0 and tok == terminator:
            break
        if tok in ("(", "{", "["):
            depth += 1
        elif tok in (")", "}", "]"):
            depth -= 1
            if depth < 0:
                p.error("unbalanced default expression")
        elif tok in ("decode", "buf", "types", "if", "let", ";") and not (tok == ";" and depth > 0):
            p.error(f"default expression contains {tok!r}: not a shape this script understands")
        elif tok == "<eof>":
            p.error("unterminated default expression")
        p.next()
    text = " ".join(p.t[start : p.pos])
    if not text:
        p.error("empty expression")
    return ("default", text)


def parse_expr(p: Parser, terminator: str):
    if p.peek() == "if":
        p.next()
        cond = parse_cond(p)
        p.expect("{")
        then = parse_expr(p, "}")
        p.expect("} else {")
        other = parse_expr(p, "}")
        p.expect("}")
        return ("if", cond, then, other)
    if p.peek() == "types":
        return ("decode", parse_decode(p))
    return parse_default(p, terminator)


def eval_expr(expr, v: int):
    kind = expr[0]
    if kind == "if":
        return eval_expr(expr[2] if eval_cond(expr[1], v) else expr[3], v)
    if kind == "decode":
        return expr[1]
    if kind == "default":
        return None
    raise AssertionError(kind)


# ---------------------------------------------------------------------------------------------
# Struct definitions and decode bodies
# ---------------------------------------------------------------------------------------------


@dataclass
class RawStruct:
    name: str
    fields: dict[str, str]  # field name -> Rust type (tokens joined without spaces)
    order: list[str]


@dataclass
class Decode:
    name: str
    versions: tuple[int, int]
    fields: list[tuple[str, object]]  # (field name, expr tree)
    flexible: object | None  # condition for the tagged-field section (None: never flexible)
    always_flexible: bool
    tags: list[tuple[int, str, object, tuple]]  # (tag, field, cond or None, wire ty)


def parse_struct_defs(tokens: list[str], where: str) -> dict[str, RawStruct]:
    out: dict[str, RawStruct] = {}
    i = 0
    while i < len(tokens) - 3:
        if tokens[i] == "pub" and tokens[i + 1] == "struct" and tokens[i + 3] == "{":
            name = tokens[i + 2]
            p = Parser(tokens, f"{where}: struct {name}", i + 4)
            fields: dict[str, str] = {}
            order: list[str] = []
            while p.peek() != "}":
                if p.peek() == "#":  # attribute
                    p.expect("#")
                    p.expect("[")
                    depth = 1
                    while depth:
                        tok = p.next()
                        depth += {"[": 1, "]": -1}.get(tok, 0)
                    continue
                p.expect("pub")
                fname = p.ident()
                p.expect(":")
                depth = 0
                ty = []
                while not (depth == 0 and p.peek() == ","):
                    tok = p.next()
                    depth += {"<": 1, ">": -1}.get(tok, 0)
                    ty.append(tok)
                p.expect(",")
                fields[fname] = "".join(ty)
                order.append(fname)
            out[name] = RawStruct(name, fields, order)
            i = p.pos
        i += 1
    return out


UNKNOWN_TAG_BODY = (
    "let unknown_value = buf . try_get_bytes ( size as usize ) ? ;"
    " unknown_tagged_fields . insert ( tag as i32 , unknown_value ) ;"
)


def parse_tag_loop(p: Parser, d: Decode) -> None:
    p.expect("let num_tagged_fields = types :: UnsignedVarInt . decode ( buf ) ? ;")
    p.expect("for _ in 0 .. num_tagged_fields {")
    p.expect("let tag : u32 = types :: UnsignedVarInt . decode ( buf ) ? ;")
    p.expect("let size : u32 = types :: UnsignedVarInt . decode ( buf ) ? ;")
    if p.at("match tag {"):
        p.expect("match tag {")
        while p.peek() != "_":
            tag = p.number()
            p.expect("=> {")
            cond = None
            if p.peek() == "if":
                p.next()
                cond = parse_cond(p)
                p.expect("{")
            fname = p.ident()
            p.expect("=")
            ty = parse_decode(p)
            p.expect(";")
            if cond is not None:
                p.expect('} else { bail ! ( STR , tag , version ) ; }')
            p.expect("}")
            d.tags.append((tag, fname, cond, ty))
        p.expect("_ => {")
        p.expect(UNKNOWN_TAG_BODY)
        p.expect("} }")
    else:
        p.expect(UNKNOWN_TAG_BODY)
    p.expect("}")


def parse_decode_impl(p: Parser, name: str) -> Decode:
    p.expect("fn decode < B : ByteBuf > ( buf : & mut B , version : i16 ) -> Result < Self > {")
    p.expect("if")
    cond = parse_cond(p)
    p.expect("{ bail ! ( STR ) ; }")
    ok = [v for v in VERSION_SPACE if not eval_cond(cond, v)]
    d = Decode(name, contiguous(ok, f"{p.where} {name} versions"), [], None, False, [])
    declared: list[str] = []
    has_tag_map = False
    while True:
        if p.at("let mut unknown_tagged_fields = BTreeMap :: new ( ) ;"):
            p.expect("let mut unknown_tagged_fields = BTreeMap :: new ( ) ;")
            has_tag_map = True
            break
        if p.at("Ok ( Self {"):
            break
        p.expect("let")
        if p.peek() == "mut":
            p.next()
        fname = p.ident()
        p.expect("=")
        expr = parse_expr(p, ";")
        p.expect(";")
        declared.append(fname)
        d.fields.append((fname, expr))
    if has_tag_map and p.at("if"):
        p.next()
        d.flexible = parse_cond(p)
        p.expect("{")
        parse_tag_loop(p, d)
        p.expect("}")
    elif has_tag_map:
        d.always_flexible = True
        parse_tag_loop(p, d)
    p.expect("Ok ( Self {")
    built = []
    while p.peek() != "}":
        built.append(p.ident())
        if p.peek() == ",":
            p.next()
    p.expect("} ) } }")
    expected = declared + (["unknown_tagged_fields"] if (d.flexible or d.always_flexible) else [])
    if built != expected:
        p.error(f"Ok(Self {{..}}) lists {built}, expected {expected}")
    return d


def parse_file(path: Path) -> tuple[dict[str, RawStruct], dict[str, Decode]]:
    where = path.name
    tokens = tokenize(path.read_text(), where)
    defs = parse_struct_defs(tokens, where)
    decodes: dict[str, Decode] = {}
    for i in range(len(tokens) - 4):
        if tokens[i : i + 3] == ["impl", "Decodable", "for"] and tokens[i + 4] == "{":
            name = tokens[i + 3]
            p = Parser(tokens, where, i + 5)
            decodes[name] = parse_decode_impl(p, name)
    missing = set(decodes) - set(defs)
    if missing:
        fail(f"{where}: Decodable impls without struct definitions: {sorted(missing)}")
    return defs, decodes


# ---------------------------------------------------------------------------------------------
# Schema model
# ---------------------------------------------------------------------------------------------

# Only what the walker (src/protocol/bounds.rs) implements; anything else fails in resolve_ty.
FIXED = {"Int8": 1, "Int16": 2, "UInt16": 2, "Int32": 4, "Int64": 8, "Float64": 8,
         "Boolean": 1, "Uuid": 16}
RUST_OF = {"Int8": {"i8"}, "Int16": {"i16"}, "UInt16": {"u16"}, "Int32": {"i32"},
           "Int64": {"i64"}, "Float64": {"f64"}, "Boolean": {"bool"},
           "Uuid": {"Uuid"}}
ELEM_NAMES = {"Int8", "Int32", "Int64", "Uuid", "String", "CompactString"}


@dataclass
class Schema:
    # struct key (module, Name) -> index; structs in output order
    index: dict[tuple[str, str], int] = field(default_factory=dict)
    structs: list[dict] = field(default_factory=list)
    apis: list[tuple[int, str, int, int]] = field(default_factory=list)
    patterns: set[str] = field(default_factory=set)


def strip_newtype(rust: str) -> str:
    if rust.startswith("super::"):
        inner = rust[len("super::") :]
        if inner not in NEWTYPES:
            fail(f"unknown newtype {rust}")
        return NEWTYPES[inner]
    return rust


# Kafka's `entityType` annotations, as kafka-protocol's newtypes carry them: the names a tenant
# mapping translates (see src/protocol/tenant.rs).
ENTITIES = {"TopicName": "Topic", "GroupId": "Group", "TransactionalId": "Txn"}


# Fields that name tenant-scoped things without an entityType (coordinator keys are group, share
# group or transactional ids), and the few a tenant mapping must see for other reasons.
SPECIAL = {
    ("find_coordinator_request", "key"): "Group",
    ("find_coordinator_request", "coordinator_keys"): "Group",
    ("find_coordinator_response", "key"): "Group",
    ("metadata_response", "cluster_id"): "ClusterId",
    ("describe_cluster_response", "cluster_id"): "ClusterId",
    ("consumer_group_heartbeat_request", "subscribed_topic_regex"): "Regex",
    ("consumer_group_describe_response", "subscribed_topic_regex"): "Regex",
    ("list_transactions_request", "transactional_id_pattern"): "Regex",
}
# Config resources: the name is a topic's or a group's depending on the type beside it.
CONFIG_MODULES = {
    "describe_configs_request", "describe_configs_response", "alter_configs_request",
    "alter_configs_response", "incremental_alter_configs_request",
    "incremental_alter_configs_response", "list_config_resources_response",
}


def field_entity(module: str, fname: str, rust: str) -> str | None:
    if (module, fname) in SPECIAL:
        return SPECIAL[(module, fname)]
    if module in CONFIG_MODULES and fname in ("resource_name", "resource_type"):
        return "ConfigName" if fname == "resource_name" else "ConfigType"
    return entity_of(rust)


def entity_of(rust: str) -> str | None:
    """The entity a field of this Rust type names (a string or an array of strings), if any."""
    base = unwrap(rust, "Option") or rust
    base = unwrap(base, "Vec") or base
    if base.startswith("super::"):
        return ENTITIES.get(base[len("super::"):])
    return None


def unwrap(rust: str, outer: str) -> str | None:
    prefix = outer + "<"
    if rust.startswith(prefix) and rust.endswith(">"):
        return rust[len(prefix) : -1]
    return None


def resolve_ty(wire: tuple, rust: str, module: str, ctx: str, schema: Schema, pending: list) -> str:
    """Joins the decoder's wire type with the struct field's Rust type into a Rust `Ty` literal."""
    kind = wire[0]
    inner = unwrap(rust, "Option")
    nullable = inner is not None
    base = inner if nullable else rust
    if kind in FIXED:
        if nullable or strip_newtype(base) not in RUST_OF[kind]:
            fail(f"{ctx}: {kind} decoded into Rust type {rust}")
        schema.patterns.add(kind)
        return kind
    if kind in ("String", "CompactString"):
        if strip_newtype(base) != "StrBytes":
            fail(f"{ctx}: {kind} decoded into Rust type {rust} (only StrBytes is bounded)")
        name = ("Nullable" if nullable else "") + kind
        schema.patterns.add(name)
        return name
    if kind in ("Bytes", "CompactBytes"):
        if base != "Bytes":
            fail(f"{ctx}: {kind} decoded into Rust type {rust} (only bytes::Bytes is zero-copy)")
        name = ("Nullable" if nullable else "") + kind
        schema.patterns.add(name)
        return name
    if kind in CONTAINERS:
        elem_rust = unwrap(base, "Vec")
        if elem_rust is None:
            fail(f"{ctx}: {kind} decoded into Rust type {rust}")
        ew = wire[1]
        if ew[0] == "Struct":
            elem = f"Elem::Struct({struct_ref(module, elem_rust, ctx, schema, pending)})"
            elem_name = "Struct"
        else:
            if ew[0] not in ELEM_NAMES:
                fail(f"{ctx}: unsupported array element {ew[0]}")
            if ew[0] in FIXED:
                if strip_newtype(elem_rust) not in RUST_OF[ew[0]]:
                    fail(f"{ctx}: {ew[0]} elements decoded into {elem_rust}")
            elif strip_newtype(elem_rust) != "StrBytes":
                fail(f"{ctx}: {ew[0]} elements decoded into {elem_rust}")
            elem = f"Elem::{ew[0]}"
            elem_name = ew[0]
        name = ("Nullable" if nullable else "") + kind
        schema.patterns.add(f"{name}({elem_name})")
        return f"{name}({elem})"
    if kind == "Struct":
        if nullable:
            fail(f"{ctx}: Struct decoded into {rust}")
        schema.patterns.add("Struct")
        return f"Struct({struct_ref(module, base, ctx, schema, pending)})"
    if kind == "OptionStruct":
        if not nullable:
            fail(f"{ctx}: OptionStruct decoded into {rust}")
        schema.patterns.add("OptionStruct")
        return f"OptionStruct({struct_ref(module, base, ctx, schema, pending)})"
    fail(f"{ctx}: wire type {kind} is not supported by the bounds walker")
    raise AssertionError("unreachable")


def struct_ref(module: str, name: str, ctx: str, schema: Schema, pending: list) -> int:
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
        fail(f"{ctx}: nested type {name!r} is not a struct of the same module")
    key = (module, name)
    if key not in schema.index:
        schema.index[key] = len(schema.structs)
        schema.structs.append({})
        pending.append(key)
    return schema.index[key]


def runs(per_version: dict[int, object]) -> list[tuple[int, int, object]]:
    """[(lo, hi, value)] for maximal runs of equal non-None values."""
    out: list[list] = []
    for v in sorted(per_version):
        val = per_version[v]
        if val is None:
            continue
        if out and out[-1][1] == v - 1 and out[-1][2] == val:
            out[-1][1] = v
        else:
            out.append([v, v, val])
    return [tuple(r) for r in out]


def build_struct(key, modules, schema: Schema, pending: list) -> None:
    module, name = key
    defs, decodes = modules[module]
    if name not in decodes:
        fail(f"{module}: no Decodable impl for {name}")
    d = decodes[name]
    rust = defs[name]
    lo, hi = d.versions
    versions = range(lo, hi + 1)
    ctx = f"{module}::{name}"

    fields = []
    for fname, expr in d.fields:
        if fname not in rust.fields:
            fail(f"{ctx}: decoded field {fname} is not in the struct definition")
        per_v = {v: eval_expr(expr, v) for v in versions}
        for flo, fhi, wire in runs(per_v):
            ty = resolve_ty(wire, rust.fields[fname], module, f"{ctx}.{fname}", schema, pending)
            fields.append((flo, fhi, ty, fname, field_entity(module, fname, rust.fields[fname])))

    if d.always_flexible:
        flex = [v for v in versions]
    elif d.flexible is not None:
        flex = [v for v in versions if eval_cond(d.flexible, v)]
    else:
        flex = []
    if flex:
        flo, fhi = contiguous(flex, f"{ctx} flexible versions")
        if fhi != hi:
            fail(f"{ctx}: flexible versions {flo}..{fhi} do not extend to the last version {hi}")
        flexible_from = flo
    else:
        flexible_from = None

    tags = []
    seen = set()
    for tag, fname, cond, wire in d.tags:
        if tag in seen:
            fail(f"{ctx}: duplicate tag {tag}")
        seen.add(tag)
        if fname not in rust.fields:
            fail(f"{ctx}: tagged field {fname} is not in the struct definition")
        ok = [v for v in flex if cond is None or eval_cond(cond, v)]
        tlo, thi = contiguous(ok, f"{ctx} tag {tag}")
        ty = resolve_ty(wire, rust.fields[fname], module, f"{ctx}.{fname}", schema, pending)
        if field_entity(module, fname, rust.fields[fname]):
            fail(f"{ctx}: tagged field {fname} names a {entity_of(rust.fields[fname])}: the tenant walker does not translate tagged fields")
        tags.append((tag, tlo, thi, ty, fname))

    schema.structs[schema.index[key]] = {
        "module": module,
        "name": name,
        "lo": lo,
        "hi": hi,
        "flex": flexible_from,
        "fields": fields,
        "tags": tags,
    }


def compute_min_sizes(schema: Schema) -> int:
    """Minimum encoded size of each struct at each of its versions; returns the max nesting depth."""
    memo: dict[tuple[int, int], int] = {}
    depth_memo: dict[int, int] = {}
    visiting: set[int] = set()

    def ty_min(ty: str, v: int) -> int:
        m = re.fullmatch(r"(Nullable)?(\w+)(?:\((.*)\))?", ty)
        assert m, ty
        kind, arg = m.group(2), m.group(3)
        if kind in FIXED:
            return FIXED[kind]
        return {"String": 2, "CompactString": 1, "Bytes": 4, "CompactBytes": 1, "Array": 4,
                "CompactArray": 1, "OptionStruct": 1}.get(kind) or struct_min(int(arg), v)

    def struct_min(sid: int, v: int) -> int:
        st = schema.structs[sid]
        if not st["lo"] <= v <= st["hi"]:
            fail(f"{st['module']}::{st['name']} is embedded at version {v} outside its range")
        if (sid, v) in memo:
            return memo[(sid, v)]
        if sid in visiting:
            fail(f"recursive schema at {st['name']}")
        visiting.add(sid)
        total = sum(ty_min(ty, v) for lo, hi, ty, _, _ in st["fields"] if lo <= v <= hi)
        if st["flex"] is not None and v >= st["flex"]:
            total += 1
        visiting.discard(sid)
        memo[(sid, v)] = total
        return total

    def refs(ty: str) -> list[int]:
        return [int(x) for x in re.findall(r"Struct\((\d+)\)", ty)]

    def depth(sid: int) -> int:
        if sid in depth_memo:
            return depth_memo[sid]
        st = schema.structs[sid]
        children = [c for _, _, ty, _, _ in st["fields"] for c in refs(ty)]
        children += [c for _, _, _, ty, _ in st["tags"] for c in refs(ty)]
        depth_memo[sid] = 1 + max((depth(c) for c in children), default=0)
        return depth_memo[sid]

    for sid, st in enumerate(schema.structs):
        st["min"] = [struct_min(sid, v) for v in range(st["lo"], st["hi"] + 1)]
        if max(st["min"]) > 0xFFFF:
            fail(f"{st['name']}: minimum size does not fit u16")
    # Elements of arrays whose minimum size is 0 would let a count exceed the byte budget.
    for st in schema.structs:
        for lo, hi, ty, fname in [f[:4] for f in st["fields"]] + [(a, b, t, f) for _, a, b, t, f in st["tags"]]:
            for sid in refs(ty):
                if "Array" in ty:
                    for v in range(lo, hi + 1):
                        if struct_min(sid, v) == 0:
                            schema.patterns.add(f"zero-size array element {schema.structs[sid]['name']}")
    return max(depth(sid) for sid in range(len(schema.structs)))


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def load_apis(src: Path) -> list[tuple[int, str, str, str, str]]:
    text = (src / "messages.rs").read_text()
    tokens = tokenize(text, "messages.rs")
    mod_of: dict[str, str] = {}
    for i in range(len(tokens) - 5):
        if tokens[i] == "pub" and tokens[i + 1] == "use" and tokens[i + 3] == "::":
            mod_of[tokens[i + 4]] = tokens[i + 2]
        if tokens[i : i + 3] == ["pub", "struct", tokens[i + 2]] and tokens[i + 3] == "(":
            p = Parser(tokens, "messages.rs", i + 4)
            p.expect("pub")
            NEWTYPES[tokens[i + 2]] = p.ident()
            p.expect(") ;")
    apis = []
    for i in range(len(tokens) - 3):
        if tokens[i : i + 3] == ["impl", "Request", "for"]:
            p = Parser(tokens, "messages.rs", i + 3)
            req = p.ident()
            p.expect("{ const KEY : i16 =")
            key = p.number()
            p.expect("; type Response =")
            resp = p.ident()
            p.expect("; }")
            for t in (req, resp):
                if t not in mod_of:
                    fail(f"messages.rs: no `pub use` for {t}")
            apis.append((key, req, mod_of[req], resp, mod_of[resp]))
    if not apis:
        fail("messages.rs: no `impl Request for` blocks found")
    apis.sort()
    if len({a[0] for a in apis}) != len(apis):
        fail("messages.rs: duplicate API keys")
    return apis


def api_name(req: str) -> str:
    assert req.endswith("Request"), req
    return req[: -len("Request")]


def build(src: Path) -> tuple[Schema, int]:
    apis = load_apis(src)
    modules: dict[str, tuple] = {}
    for _, _, rmod, _, smod in apis:
        for m in (rmod, smod):
            if m not in modules:
                modules[m] = parse_file(src / "messages" / f"{m}.rs")
    schema = Schema()
    pending: list = []
    for key, req, rmod, resp, smod in apis:
        rid = struct_ref(rmod, req, "api", schema, pending)
        sid = struct_ref(smod, resp, "api", schema, pending)
        while pending:
            build_struct(pending.pop(0), modules, schema, pending)
        schema.apis.append((key, api_name(req), rid, sid))
    # Every decodable struct in the request/response files must be reachable: otherwise the
    # generated code uses a path this script did not see.
    for m, (_, decodes) in sorted(modules.items()):
        for name in decodes:
            if (m, name) not in schema.index:
                fail(f"{m}::{name} has a decoder but is not reachable from any API body")
    depth = compute_min_sizes(schema)
    return schema, depth


HEADER = """\
//! Static wire schema of every Kafka request/response body kafka-protocol 0.18.0 can decode.
//!
//! GENERATED by `scripts/gen-wire-schema.py` from the decoders of kafka-protocol 0.18.0
//! (`src/messages/*.rs`). DO NOT EDIT BY HAND: change the script and re-run
//! `python3 scripts/gen-wire-schema.py`.
//!
//! Each struct lists its fields in decode order as `F(min_version, max_version, Ty)`; a field
//! is read at version `v` only if one of its entries covers `v` (alternatives of one field are
//! adjacent and never overlap). `flex` is the first version that reads tagged fields
//! (`NEVER` if none); `tagged` lists the tags the decoder knows as `T(tag, min, max, Ty)`.
//! `min[v - lo]` is the minimum encoded size of the struct at version `v`.
//! `size` is `size_of` the decoded Rust struct, for the walker's decoded-size accounting.
// {stats}

/// Wire type of a field, as kafka-protocol's decoder reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {{
    Int8,
    Int16,
    UInt16,
    Int32,
    Int64,
    Float64,
    Boolean,
    Uuid,
    /// i16 length; -1 is rejected by the decoder.
    String,
    NullableString,
    /// Unsigned varint length + 1; 0 (null) is rejected by the decoder.
    CompactString,
    NullableCompactString,
    /// i32 length (records are decoded this way too: opaque bytes).
    Bytes,
    NullableBytes,
    CompactBytes,
    NullableCompactBytes,
    /// i32 count.
    Array(Elem),
    NullableArray(Elem),
    /// Unsigned varint count + 1.
    CompactArray(Elem),
    NullableCompactArray(Elem),
    /// Nested struct decoded at the same version; index into [`STRUCTS`].
    Struct(u16),
    /// i8 marker (1 = present) then the struct.
    OptionStruct(u16),
}}

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {{
    Int8,
    Int32,
    Int64,
    Uuid,
    String,
    CompactString,
    Struct(u16),
}}

/// One version-conditional field entry.
#[derive(Debug)]
pub(crate) struct F(pub i16, pub i16, pub Ty);

/// One known tagged field: tag, version range, type.
#[derive(Debug)]
pub(crate) struct T(pub u32, pub i16, pub i16, pub Ty);

/// One message struct.
#[derive(Debug)]
pub(crate) struct StructDef {{
    pub name: &'static str,
    pub lo: i16,
    pub hi: i16,
    pub flex: i16,
    pub fields: &'static [F],
    pub tagged: &'static [T],
    pub min: &'static [u16],
    /// `size_of` the decoded struct: what each element of an array of it costs in memory.
    pub size: usize,
    /// Fields (indexes into `fields`) that name a topic, group or transactional id.
    pub names: &'static [(u16, Ent)],
}}

/// What a name field names (Kafka's `entityType`, and a few fields without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ent {{
    Topic,
    /// Group ids, and coordinator keys (group, share group or transactional ids).
    Group,
    Txn,
    /// A response's cluster id.
    ClusterId,
    /// A regex over the tenant's names: a consumer group's topic regex (KIP-848), a
    /// ListTransactions transactional-id pattern (KIP-1152).
    Regex,
    /// A config resource's name, and the type that says whose it is.
    ConfigName,
    ConfigType,
}}

/// One API key: request and response body structs.
#[derive(Debug)]
pub(crate) struct Api {{
    pub key: i16,
    pub request: u16,
    pub response: u16,
}}

/// `flex` value of a struct that never reads tagged fields.
pub(crate) const NEVER: i16 = i16::MAX;

/// Deepest struct nesting in the schema (a top-level body counts as 1).
pub(crate) const MAX_SCHEMA_DEPTH: usize = {depth};

use core::mem::size_of;
use kafka_protocol::messages as m;
use Elem as E;
use Ty::*;
"""


def render(schema: Schema, depth: int) -> str:
    n_pairs = sum(
        (schema.structs[r]["hi"] - schema.structs[r]["lo"] + 1)
        + (schema.structs[s]["hi"] - schema.structs[s]["lo"] + 1)
        for _, _, r, s in schema.apis
    )
    stats = (f"{len(schema.apis)} API keys, {len(schema.structs)} structs, "
             f"{n_pairs} (api, version, direction) bodies.")
    out = [HEADER.format(stats=stats, depth=depth)]
    out.append("/// API keys in ascending order.")
    out.append("#[rustfmt::skip]")
    out.append("pub(crate) static APIS: &[Api] = &[")
    for key, name, rid, sid in schema.apis:
        out.append(f"    Api {{ key: {key}, request: {rid}, response: {sid} }}, // {name}")
    out.append("];")
    out.append("")
    out.append("/// All structs; `Ty::Struct(i)` indexes this table.")
    out.append("#[rustfmt::skip]")
    out.append("pub(crate) static STRUCTS: &[StructDef] = &[")
    for sid, st in enumerate(schema.structs):
        flex = "NEVER" if st["flex"] is None else str(st["flex"])
        mins = ", ".join(str(m) for m in st["min"])
        out.append(f"    // {sid}: {st['module']}::{st['name']}")
        out.append(f'    StructDef {{ name: "{st["name"]}", lo: {st["lo"]}, hi: {st["hi"]}, '
                   f"flex: {flex}, min: &[{mins}],")
        out.append(f"        size: size_of::<m::{st['module']}::{st['name']}>(),")
        names = ", ".join(f"({i}, Ent::{e})" for i, f in enumerate(st["fields"]) if (e := f[4]))
        out.append(f"        names: &[{names}],")
        if st["fields"]:
            out.append("        fields: &[")
            for lo, hi, ty, fname, _ in st["fields"]:
                out.append(f"            F({lo}, {hi}, {ty}), // {fname}")
            out.append("        ],")
        else:
            out.append("        fields: &[],")
        if st["tags"]:
            out.append("        tagged: &[")
            for tag, lo, hi, ty, fname in st["tags"]:
                out.append(f"            T({tag}, {lo}, {hi}, {ty}), // {fname}")
            out.append("        ] },")
        else:
            out.append("        tagged: &[] },")
    out.append("];")
    out.append("")
    out.append("/// Calls `$m!` with `(key, RequestType, ResponseType)` for every API (test support).")
    out.append("#[cfg(test)]")
    out.append("macro_rules! for_each_api {")
    out.append("    ($m:ident) => {")
    out.append("        $m! {")
    for key, name, rid, sid in schema.apis:
        out.append(f"            ({key}, {schema.structs[rid]['name']}, {schema.structs[sid]['name']}),")
    out.append("        }")
    out.append("    };")
    out.append("}")
    out.append("#[cfg(test)]")
    out.append("pub(crate) use for_each_api;")
    text = "\n".join(out) + "\n"
    # `E::` is shorter than `Elem::` in the tables.
    return text.replace("(Elem::", "(E::")


def main() -> int:
    try:
        crate = locate_crate()
        schema, depth = build(crate / "src")
        text = render(schema, depth)
    except SchemaError as e:
        print(f"gen-wire-schema: FAILED: {e}", file=sys.stderr)
        return 1
    if "--check" in sys.argv[1:]:
        # CI: the committed file must be exactly what the generator makes from the pinned crate.
        if not OUT.exists() or OUT.read_text() != text:
            print(f"gen-wire-schema: {OUT.relative_to(REPO)} is stale or hand-edited; "
                  f"run python3 scripts/gen-wire-schema.py", file=sys.stderr)
            return 1
        print(f"gen-wire-schema: {OUT.relative_to(REPO)} is current")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    def n_versions(sid: int) -> int:
        return schema.structs[sid]["hi"] - schema.structs[sid]["lo"] + 1

    n_req = sum(n_versions(r) for _, _, r, _ in schema.apis)
    n_resp = sum(n_versions(s) for _, _, _, s in schema.apis)
    print(f"gen-wire-schema: wrote {OUT.relative_to(REPO)} from {crate}")
    print(f"  {len(schema.apis)} API keys, {n_req} request + {n_resp} response (api, version) "
          f"bodies, {len(schema.structs)} structs, max depth {depth}")
    print(f"  patterns: {', '.join(sorted(schema.patterns))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
