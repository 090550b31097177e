#!/usr/bin/env python3
"""Generate the Karpenter CRD schema modules under plugins/module_utils/karpenter/crds/.

Ansible ships module_utils to the managed node as Python files only (AnsiballZ zips ``.py``
files), so the CRDs' ``openAPIV3Schema`` of the served ``v1`` version is stored as a compact JSON
string inside a generated Python module, together with the Karpenter version it came from. Beside
them, ``kubelet_v1beta1.py`` holds the upstream ``KubeletConfiguration`` as JSON types: Karpenter
v1.15 validates the open EC2NodeClass ``spec.kubelet`` map against it in its controller.

Usage (from the repository root; `go` must be able to run: export GOTOOLCHAIN=go1.27.3)::

    python hack/gen_crd_data.py                    # version from sandbox/go/karpenter-aws/go.mod
    python hack/gen_crd_data.py --version v1.15.0  # explicit version, fetched with `go mod download`
    python hack/gen_crd_data.py --provider-dir DIR # a karpenter-provider-aws source tree on disk
    python hack/gen_crd_data.py --crd-dir DIR      # CRD YAML files only (kubelet types left as they are)
    python hack/gen_crd_data.py --check            # exit 1 if the generated files are out of date

The CRDs come from the Go module ``github.com/aws/karpenter-provider-aws@<version>``
(``pkg/apis/crds/``), downloaded through the Go module proxy (the module cache when it is there);
the version is the ``require`` line of that module in sandbox/go/karpenter-aws/go.mod, the
controller the sandbox builds. The kubelet types come from the ``k8s.io/kubelet`` version the
provider's go.mod requires (``config/v1beta1``) and from the modules of the types it uses, at the
versions that go.mod pins. ``description`` keywords are stripped (they are documentation, not
validation) unless ``--keep-descriptions`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "plugins", "module_utils", "karpenter", "crds")
MODULE = "github.com/aws/karpenter-provider-aws"
DEFAULT_VERSION = "v1.15.0"
# the go.mod of the Karpenter controller the sandbox builds: its provider require line pins the version
SANDBOX_GO_MOD = os.path.join(REPO, "sandbox", "go", "karpenter-aws", "go.mod")

# output module name -> CRD file name in pkg/apis/crds/
CRDS = {
    "nodepool_v1": "karpenter.sh_nodepools.yaml",
    "ec2nodeclass_v1": "karpenter.k8s.aws_ec2nodeclasses.yaml",
}
SERVED_VERSION = "v1"

# Schema keywords whose value is a map of property name -> schema, or a schema, or a list of schemas.
_MAP_OF_SCHEMAS = ("properties",)
_SCHEMA_VALUED = ("items", "additionalProperties", "not")
_LIST_OF_SCHEMAS = ("anyOf", "allOf", "oneOf")


def go_mod_requires(path):
    """``{module path: version}`` of the ``require`` lines (block or single-line form) of a go.mod."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        in_block = False
        for raw in fh:
            line = raw.split("//", 1)[0].strip()
            if in_block:
                if line == ")":
                    in_block = False
                    continue
                fields = line.split()
            elif line == "require (":
                in_block = True
                continue
            elif line.startswith("require "):
                fields = line.split()[1:]
            else:
                continue
            if len(fields) == 2:
                out[fields[0]] = fields[1]
    return out


def pinned_version():
    """The karpenter-provider-aws version the sandbox builds (sandbox/go/karpenter-aws/go.mod), or the default."""
    try:
        return go_mod_requires(SANDBOX_GO_MOD).get(MODULE) or DEFAULT_VERSION
    except OSError:
        return DEFAULT_VERSION


def download_module_dir(path, version, overrides=None):
    """The source directory of Go module ``path@version``: from ``overrides`` or `go mod download -json`."""
    override = (overrides or {}).get(f"{path}@{version}")
    if override:
        return override
    env = dict(os.environ, GOFLAGS="-mod=mod")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["go", "mod", "download", "-json", f"{path}@{version}"],
            cwd=tmp,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        info = {"Error": proc.stderr.strip() or f"exit status {proc.returncode}"}
    if info.get("Error") or proc.returncode:
        raise SystemExit(f"go mod download {path}@{version} failed: {info.get('Error') or proc.stderr.strip()}")
    return info["Dir"]


def strip_descriptions(schema):
    """Return a copy of an OpenAPI schema without ``description`` keywords (property names are kept)."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key in _MAP_OF_SCHEMAS and isinstance(value, dict):
            out[key] = {name: strip_descriptions(sub) for name, sub in value.items()}
        elif key in _SCHEMA_VALUED and isinstance(value, dict):
            out[key] = strip_descriptions(value)
        elif key in _LIST_OF_SCHEMAS and isinstance(value, list):
            out[key] = [strip_descriptions(sub) for sub in value]
        else:
            out[key] = value
    return out


def load_crd(path, keep_descriptions=False):
    """Load one CRD file and return the data for the served v1 version."""
    with open(path, encoding="utf-8") as fh:
        crd = yaml.safe_load(fh)
    spec = crd["spec"]
    versions = [v for v in spec["versions"] if v["name"] == SERVED_VERSION and v.get("served")]
    if not versions:
        raise SystemExit(f"{path}: no served {SERVED_VERSION} version")
    version = versions[0]
    schema = version["schema"]["openAPIV3Schema"]
    if not keep_descriptions:
        schema = strip_descriptions(schema)
    return {
        "crd_name": crd["metadata"]["name"],
        "group": spec["group"],
        "version": SERVED_VERSION,
        "kind": spec["names"]["kind"],
        "plural": spec["names"]["plural"],
        "short_names": spec["names"].get("shortNames", []),
        "scope": spec["scope"],
        "storage": bool(version.get("storage")),
        "subresources": sorted((version.get("subresources") or {}).keys()),
        "schema": schema,
    }


# --------------------------------------------------------------------------------------------
# The upstream KubeletConfiguration as JSON types, read from the Go sources in the module cache.
#
# Karpenter v1.15 stores EC2NodeClass spec.kubelet as an open map and validates it in the controller
# by decoding it strictly into k8s.io/kubelet/config/v1beta1.KubeletConfiguration (unknown fields and
# wrong JSON types are refused). The offline validator needs the same field tree, so it is derived
# here from the Go type declarations of the k8s.io/kubelet version karpenter-provider-aws requires,
# following the named types into the packages they come from (apimachinery, api, component-base) at
# the versions the provider's go.mod pins. Types that decode themselves (an UnmarshalJSON or
# UnmarshalText method) are modelled by name in GO_JSON_DECODERS; an unknown one stops the generator.

KUBELET_MODULE = "k8s.io/kubelet"
KUBELET_PACKAGE = "k8s.io/kubelet/config/v1beta1"
KUBELET_ROOT = "KubeletConfiguration"
KUBELET_OUT = "kubelet_v1beta1"
# the provider's own view of spec.kubelet: the fields it extracts and applies on every AMI family
PROVIDER_APIS_PACKAGE = "pkg/apis/v1"
PROVIDER_PARSED_KUBELET = "ParsedKubeletConfig"

# named types with their own JSON decoding -> how the validator models them
GO_JSON_DECODERS = {
    "k8s.io/apimachinery/pkg/apis/meta/v1.Duration": "duration",  # a string for time.ParseDuration
    "k8s.io/apimachinery/pkg/apis/meta/v1.Time": "time",  # an RFC 3339 string or null
    "k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime": "time",
    "k8s.io/apimachinery/pkg/api/resource.Quantity": "quantity",  # a string or a number: resource.ParseQuantity
    # a string for metav1.Duration, or an integer number of nanoseconds
    "k8s.io/component-base/logs/api/v1.TimeOrMetaDuration": "duration-or-nanoseconds",
}
GO_BASIC = {
    "bool": "bool",
    "string": "string",
    "int": "int64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "uint": "uint64",
    "uint8": "uint8",
    "byte": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "uintptr": "uint64",
    "rune": "int32",
    "float32": "float32",
    "float64": "float64",
    "any": "any",
}

_GO_CHUNK = re.compile(
    r"`[^`]*`"  # raw string
    r'|"(?:[^"\\\n]|\\.)*"'  # interpreted string
    r"|'(?:[^'\\\n]|\\.)*'"  # rune
    r"|//[^\n]*"  # line comment
    r"|/\*.*?\*/"  # block comment
    r"|[^`\"'/]+|/",
    re.S,
)
_GO_TOKEN = re.compile(r"\s*(`[^`]*`|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_][A-Za-z0-9_]*|[0-9][0-9A-Za-z_.]*|.)", re.S)
_GO_TYPE_DECL = re.compile(r"^type\s+([A-Za-z_]\w*)\s*(=?)\s*", re.M)
_GO_TYPE_GROUP = re.compile(r"^type\s*\(\n(.*?)^\)", re.M | re.S)
_GO_METHOD = re.compile(r"^func\s*\(\s*(?:\w+\s+)?\*?\s*(\w+)\s*\)\s*(UnmarshalJSON|UnmarshalText)\s*\(", re.M)
_GO_PACKAGE = re.compile(r"^package\s+(\w+)", re.M)
_GO_IMPORT_BLOCK = re.compile(r"^import\s*\((.*?)\)", re.M | re.S)
_GO_IMPORT_LINE = re.compile(r"^import\s+((?:\w+|\.)\s+)?(\"[^\"]+\")", re.M)
_GO_IMPORT_SPEC = re.compile(r"^\s*((?:\w+|\.)\s+)?(\"[^\"]+\")\s*$", re.M)


def go_code(src):
    """Go source without comments; multi-line raw strings become empty (their lines kept)."""
    out = []
    for m in _GO_CHUNK.finditer(src):
        chunk = m.group(0)
        if chunk.startswith("//"):
            continue
        if chunk.startswith("/*"):
            out.append("\n" * chunk.count("\n") or " ")
        elif chunk.startswith("`") and "\n" in chunk:
            out.append("``" + "\n" * chunk.count("\n"))
        else:
            out.append(chunk)
    return "".join(out)


def go_imports(code):
    """``{name the file uses: import path}`` of a Go file (without comments); the name is the alias or the
    last path element."""
    imports = {}
    specs = [s for block in _GO_IMPORT_BLOCK.findall(code) for s in _GO_IMPORT_SPEC.findall(block)]
    specs += _GO_IMPORT_LINE.findall(code)
    for alias, quoted in specs:
        ipath = json.loads(quoted)
        imports[alias.strip() or ipath.rsplit("/", 1)[-1]] = ipath
    return imports


def go_tokens(text):
    """Tokens of a Go snippet, with the semicolons Go inserts at line ends."""
    toks = []
    for m in _GO_TOKEN.finditer(text):
        ws = text[m.start() : m.start(1)]
        tok = m.group(1)
        if "\n" in ws and toks and (toks[-1][0] in '`"_' or toks[-1][0].isalnum() or toks[-1] in (")", "]", "}")):
            toks.append(";")
        if tok == "\n":
            continue
        if tok.isspace():
            continue
        toks.append(tok)
    return toks


def go_tag_json(tag):
    """``(name, options)`` of the json key of a Go struct tag literal, or None when it has none."""
    if not tag:
        return None
    body = tag[1:-1] if tag[0] == "`" else json.loads(tag)
    for m in re.finditer(r'([^:\s"]+):"((?:[^"\\]|\\.)*)"', body):
        if m.group(1) == "json":
            value = json.loads('"' + m.group(2) + '"')
            name, _sep, opts = value.partition(",")
            return name, [o for o in opts.split(",") if o]
    return None


class GoPackage:
    """The type declarations, imports and self-decoding types of one Go package directory."""

    def __init__(self, import_path, directory):
        self.path = import_path
        self.name = None
        self.decls = {}  # type name -> (is alias, declaration text, {import alias: import path})
        self.decoders = set()  # names of types with an UnmarshalJSON / UnmarshalText method
        files = sorted(f for f in os.listdir(directory) if f.endswith(".go") and not f.endswith("_test.go"))
        if not files:
            raise SystemExit(f"{import_path}: no Go files in {directory}")
        for fname in files:
            with open(os.path.join(directory, fname), encoding="utf-8") as fh:
                src = fh.read()
            if re.search(r"^//go:build\s+ignore\b", src, re.M):
                continue
            self._add_file(go_code(src))

    def _add_file(self, code):
        m = _GO_PACKAGE.search(code)
        if m:
            self.name = self.name or m.group(1)
        imports = go_imports(code)
        for m in _GO_METHOD.finditer(code):
            self.decoders.add(m.group(1))
        for m in _GO_TYPE_DECL.finditer(code):
            self._add_decl(m.group(1), bool(m.group(2)), code, m.end(), imports)
        for group in _GO_TYPE_GROUP.finditer(code):
            for spec in re.finditer(r"^\t([A-Za-z_]\w*)\s*(=?)\s*", group.group(1), re.M):
                self._add_decl(spec.group(1), bool(spec.group(2)), group.group(1), spec.end(), imports)

    def _add_decl(self, name, alias, code, pos, imports):
        """The declaration text from ``pos``: up to the end of the line, or of a struct/interface body."""
        depth = 0
        i = pos
        while i < len(code):
            ch = code[i]
            if ch in "`\"'":
                close = code.index(ch, i + 1) if ch == "`" else _string_end(code, i)
                i = close + 1
                continue
            if ch in "{[(":
                depth += 1
            elif ch in "}])":
                depth -= 1
            elif ch == "\n" and depth == 0:
                break
            i += 1
        if name not in self.decls:
            self.decls[name] = (alias, code[pos:i], imports)


def _string_end(code, i):
    quote = code[i]
    j = i + 1
    while code[j] != quote:
        j += 2 if code[j] == "\\" else 1
    return j


class _TypeParser:
    """Recursive-descent parser of one Go type expression (tokens from go_tokens)."""

    def __init__(self, tokens):
        self.toks = tokens
        self.i = 0

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, expect=None):
        tok = self.peek()
        if expect is not None and tok != expect:
            raise SystemExit(f"Go type parse error: expected {expect!r}, got {tok!r} in {' '.join(self.toks)}")
        self.i += 1
        return tok

    def type_expr(self):
        tok = self.take()
        if tok == "*":
            return ("ptr", self.type_expr())
        if tok == "(":
            inner = self.type_expr()
            self.take(")")
            return inner
        if tok == "[":
            if self.peek() == "]":
                self.take()
                return ("slice", self.type_expr())
            length = self.take()
            self.take("]")
            return ("array", length, self.type_expr())
        if tok == "map":
            self.take("[")
            key = self.type_expr()
            self.take("]")
            return ("map", key, self.type_expr())
        if tok == "struct":
            return ("struct", self.fields())
        if tok == "interface":
            self.take("{")
            empty = self.peek() == "}"
            depth = 1
            while depth:
                t = self.take()
                depth += {"{": 1, "}": -1}.get(t, 0)
            return ("named", None, "any") if empty else ("unsupported", "interface with methods")
        if tok in ("func", "chan"):
            return ("unsupported", tok)
        if tok and (tok[0].isalpha() or tok[0] == "_"):
            if self.peek() == "." and self.peek(1) and self.peek(1)[0].isalpha():
                self.take(".")
                name = self.take()
                return self._generic(("named", tok, name))
            return self._generic(("named", None, tok))
        raise SystemExit(f"Go type parse error at {tok!r} in {' '.join(self.toks)}")

    def _generic(self, named):
        if self.peek() == "[":
            return ("unsupported", "generic type %s" % named[2])
        return named

    def fields(self):
        """``[(go name or None for embedded, type, tag)]`` of a struct body."""
        self.take("{")
        out = []
        while True:
            while self.peek() == ";":
                self.take()
            if self.peek() == "}":
                self.take()
                return out
            names = []
            first, second = self.peek(), self.peek(1)
            embedded = first == "*" or second in (";", "}", ".") or (second or "").startswith(('"', "`"))
            if embedded:
                typ = self.type_expr()
            else:
                names.append(self.take())
                while self.peek() == ",":
                    self.take()
                    names.append(self.take())
                typ = self.type_expr()
            tag = self.take() if (self.peek() or "").startswith(('"', "`")) else None
            for name in names or [None]:
                out.append((name, typ, tag))


class KubeletTypes:
    """The JSON model of KubeletConfiguration and every type it reaches (see render_kubelet)."""

    def __init__(self, requires, module_dir):
        self.requires = requires  # {module path: version} used to resolve imports
        self.module_dir = module_dir  # (module path, version) -> source directory
        self.packages = {}
        self.structs = {}
        self.used_modules = set()

    def package(self, import_path):
        pkg = self.packages.get(import_path)
        if pkg is None:
            mod = max(
                (m for m in self.requires if import_path == m or import_path.startswith(m + "/")), key=len, default=None
            )
            if mod is None:  # the standard library included: its types have no model here
                raise SystemExit(f"{import_path}: no module in the provider's go.mod provides it")
            self.used_modules.add((mod, self.requires[mod]))
            directory = os.path.join(self.module_dir(mod, self.requires[mod]), import_path[len(mod) :].lstrip("/"))
            pkg = self.packages[import_path] = GoPackage(import_path, directory)
        return pkg

    def named(self, pkg, name, imports, where):
        """The node of a named type (``name`` declared in ``pkg``, or a predeclared type)."""
        if pkg is None:
            if name not in GO_BASIC:
                self.unsupported(name, where)
            return {
                "t": GO_BASIC[name],
                "go": {"byte": "uint8", "rune": "int32", "any": "interface {}"}.get(name, name),
            }
        decl = pkg.decls.get(name)
        if decl is None:
            raise SystemExit(f"{pkg.path}.{name}: type declaration not found ({where})")
        alias, text, decl_imports = decl
        parsed = _TypeParser(go_tokens(text)).type_expr()
        qualified = f"{pkg.path}.{name}"
        go_name = f"{pkg.name}.{name}"
        if alias:
            return self.node(parsed, pkg, decl_imports, where)
        decoder = self.decoder(pkg, name, parsed, decl_imports)
        if decoder:
            if decoder not in GO_JSON_DECODERS:
                raise SystemExit(
                    f"{decoder} decodes JSON itself (UnmarshalJSON/UnmarshalText) and has no model in "
                    f"GO_JSON_DECODERS (hack/gen_crd_data.py) - add one ({where})"
                )
            return {"t": GO_JSON_DECODERS[decoder], "go": go_name}
        if parsed[0] == "struct":
            if qualified not in self.structs:
                self.structs[qualified] = None  # recursion guard
                self.structs[qualified] = {
                    "go": go_name,
                    "fields": self.struct_fields(parsed[1], pkg, decl_imports, qualified),
                }
            return {"t": "struct", "ref": qualified, "go": go_name}
        node = self.node(parsed, pkg, decl_imports, where)
        node = dict(node, go=go_name)
        return node

    def decoder(self, pkg, name, parsed, imports):
        """The qualified name of the type whose UnmarshalJSON/UnmarshalText decodes ``name`` (its own or
        one promoted from an embedded field), or None."""
        if name in pkg.decoders:
            return f"{pkg.path}.{name}"
        if parsed[0] != "struct":
            return None
        for field_name, typ, _tag in parsed[1]:
            if field_name is not None:
                continue
            while typ[0] == "ptr":
                typ = typ[1]
            if typ[0] != "named" or (typ[1] is None and typ[2] in GO_BASIC):
                continue
            epkg = self.package(imports[typ[1]]) if typ[1] else pkg
            edecl = epkg.decls.get(typ[2])
            if edecl is None:
                continue
            found = self.decoder(epkg, typ[2], _TypeParser(go_tokens(edecl[1])).type_expr(), edecl[2])
            if found:
                return found
        return None

    def node(self, typ, pkg, imports, where):
        kind = typ[0]
        if kind == "ptr":
            return dict(self.node(typ[1], pkg, imports, where), ptr=True)
        if kind == "named":
            qualifier, name = typ[1], typ[2]
            if qualifier is None and name in GO_BASIC:
                return self.named(None, name, imports, where)
            if qualifier is not None and qualifier not in imports:
                raise SystemExit(f"{pkg.path}: unknown import {qualifier} ({where})")
            return self.named(self.package(imports[qualifier]) if qualifier else pkg, name, imports, where)
        if kind == "slice":
            elem = self.node(typ[1], pkg, imports, where)
            if elem["go"] == "uint8":
                return {"t": "bytes", "go": "[]uint8"}  # base64 string
            return {"t": "slice", "go": "[]" + _go_string(elem), "elem": elem}
        if kind == "array":
            return self.unsupported("array [%s]" % typ[1], where)
        if kind == "map":
            key = self.node(typ[1], pkg, imports, where)
            if key["t"] not in ("string",) and not key["t"].startswith(("int", "uint")):
                return self.unsupported("map key %s" % key["go"], where)
            elem = self.node(typ[2], pkg, imports, where)
            return {"t": "map", "go": "map[%s]%s" % (key["go"], _go_string(elem)), "key": key["t"], "elem": elem}
        if kind == "struct":
            anon = f"{pkg.path}.{where}.struct"
            self.structs[anon] = {"go": "struct", "fields": self.struct_fields(typ[1], pkg, imports, anon)}
            return {"t": "struct", "ref": anon, "go": "struct"}
        return self.unsupported(typ[1], where)

    @staticmethod
    def unsupported(what, where):
        raise SystemExit(f"no JSON model for Go type {what} ({where}); extend hack/gen_crd_data.py")

    def struct_fields(self, fields, pkg, imports, where):
        """``{json name: node}`` with encoding/json's rules: tags, promotion of embedded structs, dominance."""
        candidates = []  # (json name, depth, tagged, node)
        self._collect(fields, pkg, imports, where, 0, candidates, set())
        by_name = {}
        for cand in candidates:
            by_name.setdefault(cand[0], []).append(cand)
        out = {}
        for name, cands in sorted(by_name.items()):
            cands.sort(key=lambda c: (c[1], not c[2]))
            if len(cands) > 1 and cands[0][1] == cands[1][1] and cands[0][2] == cands[1][2]:
                continue  # ambiguous: encoding/json ignores the name
            out[name] = cands[0][3]
        return out

    def _collect(self, fields, pkg, imports, where, depth, out, visiting, via=()):
        """Candidates ``(json name, depth, tagged, node)``; a promoted field's node names the embedded
        fields it is reached through (``via``: encoding/json puts them in its error messages)."""
        for go_name, typ, tag in fields:
            tag_json = go_tag_json(tag)
            if tag_json and tag_json[0] == "-" and not tag_json[1]:
                continue
            json_name = tag_json[0] if tag_json else ""
            if tag_json and "string" in tag_json[1]:
                self.unsupported("field %s with the json ,string option" % go_name, where)
            if go_name is None:
                base = typ[1] if typ[0] == "ptr" else typ
                if base[0] != "named":
                    self.unsupported("embedded %r" % (base,), where)
                epkg = self.package(imports[base[1]]) if base[1] else pkg
                edecl = epkg.decls.get(base[2]) if not (base[1] is None and base[2] in GO_BASIC) else None
                eparsed = _TypeParser(go_tokens(edecl[1])).type_expr() if edecl else None
                is_struct = eparsed is not None and eparsed[0] == "struct" and not edecl[0]
                if not json_name and is_struct and not self.decoder(epkg, base[2], eparsed, edecl[2]):
                    key = (epkg.path, base[2])
                    if key not in visiting:  # promote the embedded struct's fields
                        self._collect(
                            eparsed[1], epkg, edecl[2], where, depth + 1, out, visiting | {key}, via + (base[2],)
                        )
                    continue
                if not base[2][0].isupper():
                    continue
                node = self.node(typ, pkg, imports, where + "." + base[2])
                out.append((json_name or base[2], depth, bool(json_name), dict(node, via=list(via)) if via else node))
                continue
            if not go_name[0].isupper():
                continue
            node = self.node(typ, pkg, imports, where + "." + go_name)
            out.append((json_name or go_name, depth, bool(json_name), dict(node, via=list(via)) if via else node))


def _go_string(node):
    """How reflect prints a node's type (pointers included)."""
    return ("*" if node.get("ptr") else "") + node["go"]


def kubelet_types(provider_dir, module_dir):
    """``(kubelet version, root ref, structs, managed field names, source modules)`` for render_kubelet."""
    requires = go_mod_requires(os.path.join(provider_dir, "go.mod"))
    version = requires.get(KUBELET_MODULE)
    if not version:
        raise SystemExit(f"{provider_dir}/go.mod does not require {KUBELET_MODULE}")
    model = KubeletTypes(requires, module_dir)
    root = model.named(model.package(KUBELET_PACKAGE), KUBELET_ROOT, {}, KUBELET_ROOT)
    provider = GoPackage(MODULE + "/" + PROVIDER_APIS_PACKAGE, os.path.join(provider_dir, PROVIDER_APIS_PACKAGE))
    decl = provider.decls.get(PROVIDER_PARSED_KUBELET)
    if decl is None:
        raise SystemExit(f"{MODULE}/{PROVIDER_APIS_PACKAGE}: no type {PROVIDER_PARSED_KUBELET}")
    managed = []
    for go_name, _typ, tag in _TypeParser(go_tokens(decl[1])).type_expr()[1]:
        tag_json = go_tag_json(tag)
        if go_name and tag_json and tag_json[0] not in ("", "-"):
            managed.append(tag_json[0])
    return version, root["ref"], model.structs, sorted(managed), sorted(model.used_modules)


def _q(value):
    """Python literal for a str or a tuple of str, in the double-quoted style ruff format keeps."""
    if isinstance(value, (list, tuple)):
        if not value:
            return "()"
        inner = ", ".join(json.dumps(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return json.dumps(value)


WIDTH = 110


def wrap_json(text, width=WIDTH):
    """Lines of a non-raw Python string literal holding ``text``: backslashes doubled, long lines cut
    (preferably after a comma) with backslash-newline continuations, which Python removes."""
    escaped = text.replace("\\", "\\\\")
    lines = []
    while len(escaped) > width:
        cut = escaped.rfind(",", width - 40, width) + 1 or width
        # never split an escaped backslash pair: keep an even number of backslashes before the cut
        while cut > 1 and (len(escaped[:cut]) - len(escaped[:cut].rstrip("\\"))) % 2:
            cut -= 1
        lines.append(escaped[:cut] + "\\")
        escaped = escaped[cut:]
    lines.append(escaped)
    return lines


def render(name, crd_file, data, karpenter_version):
    """Render the Python module text for one CRD."""
    schema_json = json.dumps(data["schema"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if '"""' in schema_json:
        raise SystemExit(f"{name}: schema JSON contains a triple quote; cannot embed it in a string literal")
    meta = {k: v for k, v in data.items() if k != "schema"}
    kind, group = data["kind"], data["group"]
    lines = [
        f"# generated by hack/gen_crd_data.py from karpenter-provider-aws {karpenter_version} — do not edit",
        f"# source: {MODULE}@{karpenter_version}/pkg/apis/crds/{crd_file} (version {SERVED_VERSION})",
        "# ruff: noqa",
        f'"""openAPIV3Schema of the {kind} CRD ({group}/{SERVED_VERSION}), Karpenter {karpenter_version}."""',
        "",
        "import json",
        "",
        f"KARPENTER_VERSION = {_q(karpenter_version)}",
        f"CRD_FILE = {_q(crd_file)}",
        f"CRD_NAME = {_q(meta['crd_name'])}",
        f"GROUP = {_q(meta['group'])}",
        f"VERSION = {_q(meta['version'])}",
        f"API_VERSION = {_q(meta['group'] + '/' + meta['version'])}",
        f"KIND = {_q(meta['kind'])}",
        f"PLURAL = {_q(meta['plural'])}",
        f"SHORT_NAMES = {_q(meta['short_names'])}",
        f"SCOPE = {_q(meta['scope'])}",
        f"SUBRESOURCES = {_q(meta['subresources'])}",
        "",
        "# The CRD's openAPIV3Schema (description keywords removed) as compact JSON, wrapped with",
        "# backslash-newline continuations so that no line is longer than the repository's limit.",
        'SCHEMA = json.loads(\n    """\\',
        *wrap_json(schema_json),
        '"""',
        ")",
        "",
    ]
    return "\n".join(lines)


def render_kubelet(karpenter_version, kubelet):
    """Render the Python module holding the upstream KubeletConfiguration JSON model."""
    version, root, structs, managed, modules = kubelet
    types_json = json.dumps(structs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if '"""' in types_json:
        raise SystemExit("kubelet types JSON contains a triple quote; cannot embed it in a string literal")
    lines = [
        f"# generated by hack/gen_crd_data.py from {KUBELET_MODULE} {version} — do not edit",
        f"# ({KUBELET_MODULE} as required by {MODULE}@{karpenter_version} go.mod)",
        f"# source: {KUBELET_PACKAGE}.{KUBELET_ROOT} and the types it uses (SOURCES);",
        f"# MANAGED_FIELDS: {PROVIDER_APIS_PACKAGE}.{PROVIDER_PARSED_KUBELET} of the provider",
        "# ruff: noqa",
        f'"""The upstream KubeletConfiguration ({KUBELET_MODULE} {version}) as JSON types (EC2NodeClass spec.kubelet).',
        "",
        "TYPES maps a struct (import path + name) to its Go name and ``fields``: JSON name -> node. A node has",
        '``t`` (a Go kind: "bool", "string", "int32", "uint32", "float64", "any", "bytes"; "struct" with ``ref``;',
        '"slice" with ``elem``; "map" with ``key`` and ``elem``; or a self-decoding type: "duration",',
        '"duration-or-nanoseconds", "quantity", "time"), ``go`` (the Go type name in decode errors) and',
        "``ptr`` when the field is a pointer, ``via`` the embedded Go fields a promoted field is reached through.",
        "MANAGED_FIELDS are the fields Karpenter itself reads and applies on every AMI family (ParsedKubeletConfig);",
        'other fields reach the node only where the raw config is rendered (AL2023)."""',
        "",
        "import json",
        "",
        f"KARPENTER_VERSION = {_q(karpenter_version)}",
        f"MODULE = {_q(KUBELET_MODULE)}",
        f"VERSION = {_q(version)}",
        f"ROOT = {_q(root)}",
        *_tuple_lines("SOURCES", [f"{m}@{v}" for m, v in modules]),
        *_tuple_lines("MANAGED_FIELDS", managed),
        "",
        'TYPES = json.loads(\n    """\\',
        *wrap_json(types_json),
        '"""',
        ")",
        "",
    ]
    return "\n".join(lines)


def _tuple_lines(name, values):
    """``NAME = (`` one string per line ``)``: the layout ruff format gives a long tuple."""
    return [f"{name} = ("] + [f"    {json.dumps(v)}," for v in values] + [")"]


def render_init(karpenter_version, names):
    lines = [
        f"# generated by hack/gen_crd_data.py from karpenter-provider-aws {karpenter_version} — do not edit",
        '"""CRD schemas of the pinned Karpenter release, as Python data (see hack/gen_crd_data.py);',
        f'{KUBELET_OUT} holds the upstream KubeletConfiguration its EC2NodeClass spec.kubelet is checked against."""',
        "",
        f"KARPENTER_VERSION = {_q(karpenter_version)}",
        f"MODULES = {_q(names)}",
        "",
    ]
    return "\n".join(lines)


def _warn_if_the_sandbox_builds_another_kubelet(version, kubelet_version):
    """The sandbox's go.mod is the main module of the controller it builds: MVS may select a newer
    k8s.io/kubelet there than the provider requires, and the binary then validates against that one."""
    try:
        sandbox = go_mod_requires(SANDBOX_GO_MOD)
    except OSError:
        return
    selected = sandbox.get(KUBELET_MODULE)
    if sandbox.get(MODULE) == version and selected and selected != kubelet_version:
        print(
            f"note: {os.path.relpath(SANDBOX_GO_MOD, REPO)} selects {KUBELET_MODULE} {selected}, the provider requires "
            f"{kubelet_version}; the kubelet types follow the provider",
            file=sys.stderr,
        )


def _module_dirs(pairs):
    out = {}
    for pair in pairs or ():
        key, sep, directory = pair.partition("=")
        if not sep or "@" not in key:
            raise SystemExit(f"--module-dir wants MODULE@VERSION=DIR, got {pair!r}")
        out[key] = directory
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=None, help="karpenter-provider-aws version (default: pinned)")
    parser.add_argument(
        "--provider-dir", default=None, help="karpenter-provider-aws source tree of --version (skips its download)"
    )
    parser.add_argument(
        "--crd-dir", default=None, help="directory holding the CRD YAML files only (skips the kubelet types)"
    )
    parser.add_argument(
        "--module-dir",
        action="append",
        metavar="MODULE@VERSION=DIR",
        help="source tree of a Go module the kubelet types come from (instead of `go mod download`)",
    )
    parser.add_argument("--out-dir", default=OUT_DIR)
    parser.add_argument("--keep-descriptions", action="store_true")
    parser.add_argument("--check", action="store_true", help="only check that the generated files are current")
    args = parser.parse_args(argv)

    version = args.version or pinned_version()
    overrides = _module_dirs(args.module_dir)
    provider_dir = args.provider_dir
    if provider_dir is None and args.crd_dir is None:
        provider_dir = download_module_dir(MODULE, version, overrides)
    crd_dir = args.crd_dir or os.path.join(provider_dir, "pkg", "apis", "crds")
    outputs = {}
    for name, crd_file in CRDS.items():
        data = load_crd(os.path.join(crd_dir, crd_file), args.keep_descriptions)
        outputs[name + ".py"] = render(name, crd_file, data, version)
    if provider_dir is not None:
        kubelet = kubelet_types(provider_dir, lambda path, ver: download_module_dir(path, ver, overrides))
        outputs[KUBELET_OUT + ".py"] = render_kubelet(version, kubelet)
        _warn_if_the_sandbox_builds_another_kubelet(version, kubelet[0])
    outputs["__init__.py"] = render_init(version, list(CRDS))

    stale = []
    for fname, text in outputs.items():
        path = os.path.join(args.out_dir, fname)
        try:
            with open(path, encoding="utf-8") as fh:
                current = fh.read()
        except OSError:
            current = None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            os.makedirs(args.out_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
    if args.check:
        for path in stale:
            print(f"out of date: {os.path.relpath(path, REPO)}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        print(f"wrote {os.path.relpath(path, REPO)}")
    if not stale:
        print("up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
