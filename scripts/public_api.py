#!/usr/bin/env python3
"""The public API of a nova crate, from rustdoc's JSON output: listed, checked, compared.

Usage: public_api.py CRATE.json [--allow CRATE,...] [--snapshot FILE [--bless]] [--print]

1. Lists every public item reachable from the crate root, one line each, with its signature:
   modules, re-exports, structs (public fields, "private fields" when there are others),
   enums and their variants, traits and their items, functions, methods, associated items,
   type aliases, constants, statics, macros, every trait implementation written for a public
   type (derives included) and each type's auto traits (Send, Sync, Unpin...). Attributes that
   change what users may do (`#[non_exhaustive]`, `#[must_use]`) are part of the line.
2. Fails when a type or trait of a crate outside `--allow` appears in any of those signatures:
   a dependency's type in the public API makes every major release of that dependency a
   breaking release of nova.
3. With `--snapshot`, fails when the list differs from the file (a unified diff is printed);
   `--bless` writes the file instead. Any change to the public API, additive or not, shows up
   as a diff in the commit that makes it, for review.

Limits (why this and not cargo-semver-checks or cargo-public-api): those tools cannot be
installed here in reasonable time (they build hundreds of crates on 2 cores; cargo-public-api
also needs a nightly toolchain). rustdoc's JSON output is unstable: the caller runs stable
rustdoc with RUSTC_BOOTSTRAP=1, and this script reads the format version of the installed
toolchain (checked below); a toolchain upgrade may need this script adjusted. The snapshot is
not a semver verdict: it shows every change and leaves to the reviewer whether it is breaking
(a changed line is; an added line usually is not). Blanket implementations (`impl<T> Trait
for T`, from std or a dependency) are not listed: they are not nova's to keep. Items hidden
with `#[doc(hidden)]` are not in rustdoc's output, so they are neither listed nor checked.
"""

import argparse
import difflib
import json
import sys

SUPPORTED_FORMATS = {57}
PLAIN_ATTRS = {"non_exhaustive", "must_use"}


class Api:
    def __init__(self, doc):
        self.doc = doc
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.crates = doc["external_crates"]
        self.lines = set()
        self.leaks = []  # (crate, where)
        self.visited = set()
        self.context = ""
        # Where each local item is public (its first path from the root), for rendering types
        # by the path users write rather than by the private module that defines them.
        self.public = {}

    def walk(self):
        """Walks from the root twice: the first pass learns every item's public path."""
        for _ in range(2):
            self.lines, self.leaks, self.visited = set(), [], set()
            self.item(self.doc["root"], "")

    # ---- crates and names -------------------------------------------------------------------

    def crate_of(self, id_, written):
        entry = self.paths.get(str(id_))
        if entry is not None:
            cid = entry["crate_id"]
            if cid == 0:
                return None
            return self.crates[str(cid)]["name"]
        item = self.index.get(str(id_))
        if item is not None and item["crate_id"] == 0:
            return None
        first = written.split("::")[0]
        return None if first in ("crate", "self", "super", "Self") else first

    def name_of(self, id_, written):
        if id_ in self.public:
            return self.public[id_]
        entry = self.paths.get(str(id_))
        if entry is not None:
            return "::".join(entry["path"])
        return written

    def use_crate(self, crate):
        if crate is not None:
            self.leaks.append((crate, self.context))

    # ---- types --------------------------------------------------------------------------------

    def path(self, p):
        crate = self.crate_of(p["id"], p["path"])
        self.use_crate(crate)
        return self.name_of(p["id"], p["path"]) + self.args(p.get("args"))

    def args(self, a):
        if not a:
            return ""
        if a == "return_type_notation":
            return "(..)"
        if "angle_bracketed" in a:
            ab = a["angle_bracketed"]
            parts = [self.arg(x) for x in ab["args"]]
            for c in ab["constraints"]:
                name = c["name"] + self.args(c.get("args"))
                binding = c["binding"]
                if "equality" in binding:
                    term = binding["equality"]
                    rendered = self.ty(term["type"]) if "type" in term else str(term)
                    parts.append(f"{name} = {rendered}")
                else:
                    parts.append(f"{name}: {self.bounds(binding['constraint'])}")
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in a:
            p = a["parenthesized"]
            out = f"({', '.join(self.ty(t) for t in p['inputs'])})"
            if p.get("output"):
                out += f" -> {self.ty(p['output'])}"
            return out
        return str(a)

    def arg(self, x):
        if x == "infer":
            return "_"
        if "type" in x:
            return self.ty(x["type"])
        if "lifetime" in x:
            return x["lifetime"]
        if "const" in x:
            return x["const"].get("expr", "{const}")
        return str(x)

    def bounds(self, bs):
        out = []
        for b in bs:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                prefix = {"none": "", "maybe": "?", "maybe_const": "~const "}.get(
                    tb.get("modifier", "none"), ""
                )
                hr = self.hrtb(tb.get("generic_params", []))
                out.append(f"{hr}{prefix}{self.path(tb['trait'])}")
            elif "outlives" in b:
                out.append(b["outlives"])
            elif "use" in b:
                out.append("use<..>")
        return " + ".join(out)

    def hrtb(self, params):
        if not params:
            return ""
        return "for<" + ", ".join(p["name"] for p in params) + "> "

    def ty(self, t):
        if isinstance(t, str):
            return t
        (kind, v), = t.items()
        if kind == "resolved_path":
            return self.path(v)
        if kind == "generic" or kind == "primitive":
            return v
        if kind == "borrowed_ref":
            lt = (v["lifetime"] + " ") if v["lifetime"] else ""
            mutable = "mut " if v["is_mutable"] else ""
            return f"&{lt}{mutable}{self.ty(v['type'])}"
        if kind == "raw_pointer":
            return f"*{'mut' if v['is_mutable'] else 'const'} {self.ty(v['type'])}"
        if kind == "slice":
            return f"[{self.ty(v)}]"
        if kind == "array":
            return f"[{self.ty(v['type'])}; {v['len']}]"
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ")"
        if kind == "impl_trait":
            return "impl " + self.bounds(v)
        if kind == "dyn_trait":
            parts = [self.hrtb(p.get("generic_params", [])) + self.path(p["trait"]) for p in v["traits"]]
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if kind == "function_pointer":
            return "fn" + self.sig(v["sig"])
        if kind == "qualified_path":
            trait = f" as {self.path(v['trait'])}" if v.get("trait") else ""
            return f"<{self.ty(v['self_type'])}{trait}>::{v['name']}{self.args(v.get('args'))}"
        if kind == "pat":
            return self.ty(v["type"])
        if kind == "infer":
            return "_"
        return json.dumps(t)

    def sig(self, s):
        # `self`, `&self`, `&mut self` as written; other receivers with their type.
        inputs = ", ".join(
            self.receiver(name, t) if name == "self" else f"{name}: {self.ty(t)}"
            for name, t in s["inputs"]
        )
        out = f"({inputs})"
        if s.get("output") is not None:
            out += f" -> {self.ty(s['output'])}"
        return out

    def receiver(self, name, t):
        rendered = self.ty(t)
        return {"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}.get(
            rendered, f"self: {rendered}"
        )

    def generics(self, g):
        params = []
        for p in g["params"]:
            kind = p["kind"]
            if "lifetime" in kind:
                params.append(p["name"])
            elif "type" in kind:
                if kind["type"].get("is_synthetic"):
                    continue  # `impl Trait` arguments, shown in the signature
                b = self.bounds(kind["type"]["bounds"])
                d = kind["type"].get("default")
                params.append(p["name"] + (f": {b}" if b else "") + (f" = {self.ty(d)}" if d else ""))
            elif "const" in kind:
                params.append(f"const {p['name']}: {self.ty(kind['const']['type'])}")
        return "<" + ", ".join(params) + ">" if params else ""

    def where(self, g):
        preds = []
        for w in g["where_predicates"]:
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                preds.append(f"{self.ty(bp['type'])}: {self.bounds(bp['bounds'])}")
            elif "eq_predicate" in w:
                ep = w["eq_predicate"]
                rhs = ep["rhs"]
                preds.append(f"{self.ty(ep['lhs'])} = {self.ty(rhs['type']) if 'type' in rhs else rhs}")
        return " where " + ", ".join(preds) if preds else ""

    # ---- items --------------------------------------------------------------------------------

    def attrs(self, item):
        out = []
        for a in item.get("attrs", []):
            if isinstance(a, str) and a in PLAIN_ATTRS:
                out.append(f"#[{a}] ")
            elif isinstance(a, dict) and "must_use" in a:
                out.append("#[must_use] ")
            elif isinstance(a, dict) and "non_exhaustive" in a:
                out.append("#[non_exhaustive] ")
        if item.get("deprecation"):
            out.append("#[deprecated] ")
        return "".join(out)

    def emit(self, line):
        self.lines.add(line)

    def item(self, id_, path):
        item = self.index.get(str(id_))
        if item is None:
            return
        (kind, inner), = item["inner"].items()
        name = item["name"]
        here = f"{path}::{name}" if name else path
        self.context = here
        if kind == "module":
            key = ("module", id_, here)
            if key in self.visited:
                return
            self.visited.add(key)
            if path:
                self.emit(f"mod {here}")
            for child in inner["items"]:
                self.item(child, here if path else name)
        elif kind == "use":
            target = inner.get("id")
            if target is not None and str(target) in self.index:
                t = self.index[str(target)]
                if inner["is_glob"]:
                    (tk, ti), = t["inner"].items()
                    if tk == "module":
                        for child in ti["items"]:
                            self.item(child, path)
                    return
                renamed = dict(t)
                renamed["name"] = inner["name"]
                self.index_item(renamed, target, path)
            else:
                crate = self.crate_of(target, inner["source"]) if target is not None else None
                self.context = f"{path}::{inner['name']}"
                self.use_crate(crate)
                glob = "::*" if inner["is_glob"] else ""
                self.emit(f"pub use {path}::{inner['name'] if not inner['is_glob'] else ''}"
                          f" = {inner['source']}{glob}".replace("::  =", " ="))
        else:
            self.index_item(item, id_, path)

    def index_item(self, item, id_, path):
        (kind, inner), = item["inner"].items()
        here = f"{path}::{item['name']}"
        key = (kind, id_, here)
        if key in self.visited:
            return
        self.visited.add(key)
        self.public.setdefault(id_, here)
        self.context = here
        a = self.attrs(item)
        if kind == "module":
            self.item(id_, path)
        elif kind == "struct":
            g = inner["generics"]
            sk = inner["kind"]
            self.emit(f"{a}struct {here}{self.generics(g)}{self.where(g)}")
            if sk == "unit":
                pass
            elif "tuple" in sk:
                fields = sk["tuple"]
                for i, f in enumerate(fields):
                    if f is not None:
                        self.context = f"{here}.{i}"
                        self.emit(f"field {here}.{i}: {self.ty(self.index[str(f)]['inner']['struct_field'])}")
                if any(f is None for f in fields):
                    self.emit(f"field {here}: private fields")
            else:
                self.fields(here, sk["plain"])
            self.impls(here, inner["impls"])
        elif kind == "enum":
            g = inner["generics"]
            self.emit(f"{a}enum {here}{self.generics(g)}{self.where(g)}")
            for v in inner["variants"]:
                var = self.index[str(v)]
                vk = var["inner"]["variant"]["kind"]
                vhere = f"{here}::{var['name']}"
                self.context = vhere
                va = self.attrs(var)
                if vk == "plain":
                    self.emit(f"{va}variant {vhere}")
                elif "tuple" in vk:
                    tys = [
                        self.ty(self.index[str(f)]["inner"]["struct_field"]) if f is not None else "_"
                        for f in vk["tuple"]
                    ]
                    self.emit(f"{va}variant {vhere}({', '.join(tys)})")
                else:
                    self.emit(f"{va}variant {vhere} {{ .. }}")
                    self.fields(vhere, vk["struct"])
            self.impls(here, inner["impls"])
        elif kind == "union":
            self.emit(f"{a}union {here}")
            self.fields(here, inner)
            self.impls(here, inner["impls"])
        elif kind == "trait":
            g = inner["generics"]
            sup = self.bounds(inner["bounds"])
            flags = ("unsafe " if inner["is_unsafe"] else "") + ("auto " if inner["is_auto"] else "")
            dyn = "" if inner.get("is_dyn_compatible", True) else " (not dyn-compatible)"
            self.emit(f"{a}{flags}trait {here}{self.generics(g)}{': ' + sup if sup else ''}{self.where(g)}{dyn}")
            for child in inner["items"]:
                self.assoc(here, self.index[str(child)], in_trait=True)
        elif kind == "function":
            self.emit(f"{a}{self.fn_line(here, inner)}")
        elif kind == "type_alias":
            g = inner["generics"]
            self.emit(f"type {here}{self.generics(g)} = {self.ty(inner['type'])}")
        elif kind == "constant":
            self.emit(f"const {here}: {self.ty(inner['type'])}")
        elif kind == "static":
            self.emit(f"static {here}: {self.ty(inner['type'])}")
        elif kind in ("macro", "proc_macro"):
            self.emit(f"macro {here}")
        elif kind == "trait_alias":
            self.emit(f"trait alias {here}")
        else:
            self.emit(f"{kind} {here}")

    def fields(self, here, plain):
        for f in plain["fields"]:
            field = self.index[str(f)]
            self.context = f"{here}.{field['name']}"
            self.emit(f"field {here}.{field['name']}: {self.ty(field['inner']['struct_field'])}")
        if plain.get("has_stripped_fields"):
            self.emit(f"field {here}: private fields")

    def fn_line(self, here, f):
        h = f["header"]
        flags = ("const " if h["is_const"] else "") + ("async " if h["is_async"] else "") + (
            "unsafe " if h["is_unsafe"] else ""
        )
        g = f["generics"]
        return f"{flags}fn {here}{self.generics(g)}{self.sig(f['sig'])}{self.where(g)}"

    def assoc(self, owner, item, in_trait):
        (kind, inner), = item["inner"].items()
        here = f"{owner}::{item['name']}"
        self.context = here
        a = self.attrs(item)
        if kind == "function":
            provided = " (provided)" if in_trait and inner["has_body"] else ""
            self.emit(f"{a}{self.fn_line(here, inner)}{provided}")
        elif kind == "assoc_type":
            b = self.bounds(inner.get("bounds", []))
            t = inner.get("type")
            self.emit(f"type {here}{': ' + b if b else ''}{' = ' + self.ty(t) if t else ''}")
        elif kind == "assoc_const":
            v = inner.get("value")
            self.emit(f"const {here}: {self.ty(inner['type'])}{' (provided)' if in_trait and v else ''}")

    def impls(self, here, impl_ids):
        auto = []
        for i in impl_ids:
            impl = self.index[str(i)]["inner"]["impl"]
            if impl.get("blanket_impl") is not None:
                continue
            self.context = here
            if impl["is_synthetic"]:
                name = impl["trait"]["path"].split("::")[-1]
                auto.append(("!" if impl["is_negative"] else "") + name)
                continue
            g = impl["generics"]
            for_ = self.ty(impl["for"])
            if impl["trait"] is None:
                for child in impl["items"]:
                    self.assoc(here, self.index[str(child)], in_trait=False)
                continue
            neg = "!" if impl["is_negative"] else ""
            trait = self.path(impl["trait"])
            self.emit(f"impl{self.generics(g)} {neg}{trait} for {for_}{self.where(g)}")
            for child in impl["items"]:
                c = self.index[str(child)]
                (ck, ci), = c["inner"].items()
                if ck == "assoc_type":
                    self.context = f"{here}::{c['name']}"
                    self.emit(f"impl {trait} for {for_}: type {c['name']} = {self.ty(ci['type'])}")
        if auto:
            self.emit(f"auto {here}: {' '.join(sorted(auto))}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("json")
    parser.add_argument("--allow", default="")
    parser.add_argument("--snapshot")
    parser.add_argument("--bless", action="store_true")
    parser.add_argument("--print", action="store_true", help="write the list to stdout")
    args = parser.parse_args()

    with open(args.json) as f:
        doc = json.load(f)
    if doc["format_version"] not in SUPPORTED_FORMATS:
        sys.exit(
            f"{args.json}: rustdoc JSON format {doc['format_version']} is not one this script "
            f"was written for ({sorted(SUPPORTED_FORMATS)}); check it and add the version"
        )
    api = Api(doc)
    root = doc["index"][str(doc["root"])]
    api.walk()
    crate = root["name"]

    failed = False
    allowed = {"std", "core", "alloc"} | {c for c in args.allow.split(",") if c}
    leaks = {}
    for dep, where in api.leaks:
        if dep not in allowed:
            leaks.setdefault(dep, set()).add(where)
    for dep, wheres in sorted(leaks.items()):
        failed = True
        print(f"{crate}: a type or trait of `{dep}` is part of the public API:", file=sys.stderr)
        for w in sorted(wheres):
            print(f"    {w}", file=sys.stderr)

    text = "".join(line + "\n" for line in sorted(api.lines))
    if args.snapshot:
        if args.bless:
            with open(args.snapshot, "w") as f:
                f.write(text)
            print(f"{crate}: wrote {args.snapshot} ({len(api.lines)} lines)")
        else:
            try:
                with open(args.snapshot) as f:
                    old = f.read()
            except FileNotFoundError:
                old = ""
            if old != text:
                failed = True
                print(
                    f"{crate}: the public API differs from {args.snapshot}; if the change is "
                    f"meant, review it and run `bash scripts/public-api.sh --bless`:",
                    file=sys.stderr,
                )
                sys.stderr.writelines(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        args.snapshot,
                        "now",
                    )
                )
            else:
                print(f"{crate}: public API unchanged ({len(api.lines)} lines)")
    elif not failed:
        print(f"{crate}: no dependency type in the public API ({len(api.lines)} lines)")
    if args.print:
        sys.stdout.write(text)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
