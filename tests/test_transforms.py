"""Metamorphic transforms: scope-aware renaming of C and Java functions, its check, the plugin."""

from __future__ import annotations

import json
import re
from random import Random

import pytest

from avatar.code import rename as rename_module
from avatar.code.rename import mine_identifiers, rename_identifiers
from avatar.code.rename_check import check_rename
from avatar.code.transform import Transform, create_transform, function_rng, transform_all
from avatar.core.registry import TRANSFORMS, UnknownPluginError
from tests.conftest import require_data

POOL = [f"name{k}" for k in range(40)]
WORDS = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*|\S")


def rename(code: str, language: str, seed: int = 0, pool: list[str] | None = None):
    result = rename_identifiers(code, language, POOL if pool is None else pool, Random(seed))
    assert result.status != "skipped", result.reason
    return result


def diff(before: str, after: str) -> list[tuple[str, str]]:
    """(old, new) for every token that differs; the token count must not change."""
    a, b = WORDS.findall(before), WORDS.findall(after)
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b) if x != y]


def tokens(code: str) -> list[str]:
    return WORDS.findall(code)


# -- Java ---------------------------------------------------------------------------------


def test_java_local_shadowing_a_field_renames_only_the_local() -> None:
    code = """void update(int delta) {
    count += delta;
    if (delta > 0) {
        int count = delta * 2;
        log(count);
    }
    total = count;
}"""
    result = rename(code, "java")
    new = result.mapping["count"]
    out = tokens(result.code)
    # the bare field `count` (first and last) stays; the local's two occurrences move
    assert [t for t in out if t in ("count", new)] == ["count", new, new, "count"]
    assert "total" in out and "log" in out


def test_java_this_field_keeps_its_name_and_the_parameter_is_renamed() -> None:
    code = "void setX(int x) { this.x = x; }"
    result = rename(code, "java")
    new_x, new_method = result.mapping["x"], result.renames[0].new
    assert result.code == f"void {new_method}(int {new_x}) {{ this.x = {new_x}; }}"


def test_java_method_calls_on_objects_and_library_names_are_untouched() -> None:
    code = """int total(List<Item> list, Reader reader) throws IOException {
    int size = list.size();
    reader.close();
    System.out.println(Math.max(size, 1));
    return helper(size) + other.total(list, reader);
}"""
    result = rename(code, "java")
    changed = dict(diff(code, result.code))
    assert set(changed) == {"total", "list", "reader", "size"}
    assert ".size()" in result.code and ".close()" in result.code
    assert "System.out.println(Math.max(" in result.code and "helper(" in result.code
    assert "other.total(" in result.code  # another object's method of the same name


def test_java_recursive_call_is_renamed_with_the_method() -> None:
    code = "int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1) + this.fact(0); }"
    result = rename(code, "java")
    method = next(r.new for r in result.renames if r.kind == "method")
    assert result.code.count(f"{method}(") == 3 and "fact" not in result.code


@pytest.mark.parametrize(
    "code",
    [
        "@Override public int hashCode() { int h = 7; return h; }",  # must keep overriding
        "int size(int a) { return a + size(a, 1); }",  # an overload with another arity
        "int size(int a) { return a + Util.size(a); }",  # maybe a static recursive call
        "public boolean equals(Object o) { return o == null; }",  # overrides Object's
        "public static void main(String[] args) { run(args); }",  # the entry point
    ],
)
def test_java_method_name_kept_when_renaming_it_could_change_meaning(code: str) -> None:
    result = rename(code, "java")
    assert result.status == "changed" and not [r for r in result.renames if r.kind == "method"]


def test_java_lambda_catch_foreach_resource_and_for_variables() -> None:
    code = """void run(List<String> items) {
    for (int i = 0; i < items.size(); i++) { use(i); }
    for (String item : items) { use(item); }
    items.forEach(s -> use(s));
    items.sort((a, b) -> a.compareTo(b));
    try (InputStream in = open()) { in.read(); } catch (IOException e) { e.printStackTrace(); }
}"""
    result = rename(code, "java")
    assert set(result.mapping) == {"items", "i", "item", "s", "a", "b", "in", "e"}
    assert ".compareTo(" in result.code and ".printStackTrace()" in result.code
    assert check_rename(code, result.code, "java", [(r.old, r.new) for r in result.renames]) is None


def test_java_anonymous_class_field_hides_an_outer_local() -> None:
    code = """void start(int n) {
    int limit = n;
    Runnable r = new Runnable() {
        int limit = 3;
        public void run() { go(limit); }
    };
}"""
    result = rename(code, "java")
    new = result.mapping["limit"]
    # the outer local's declaration is renamed; the class's field and its use are not
    assert tokens(result.code).count(new) == 1 and tokens(result.code).count("limit") == 2
    assert "public void run()" in result.code  # a method of the anonymous class keeps its name


# -- C ------------------------------------------------------------------------------------


def test_c_block_scoped_shadowing() -> None:
    code = """int f(int n) {
    g(x);
    {
        int x = n;
        h(x);
    }
    return x;
}"""
    result = rename(code, "c")
    new = result.mapping["x"]
    out = tokens(result.code)
    # the global x before and after the block stays; the block's local x is renamed
    assert [t for t in out if t in ("x", new)] == ["x", new, new, "x"]


def test_c_nested_redeclaration_keeps_its_shape() -> None:
    code = "int f(void) { int x = 1; { int x = 2; use(x); } return x; }"
    result = rename(code, "c")
    assert tokens(result.code).count(result.mapping["x"]) == 4


def test_c_fields_other_functions_strings_and_comments_are_untouched() -> None:
    code = """static int copy(struct ctx *s, const char *src, int len) {
    /* copy len bytes of src */
    int n = s->len + len;
    s->buf.len = n;
    memcpy(s->data, src, n);
    printf("len=%d src=%s\\n", len, src);
    return n;
}"""
    result = rename(code, "c")
    assert set(result.mapping) == {"s", "src", "len", "n"}
    out = result.code
    assert "/* copy len bytes of src */" in out and '"len=%d src=%s\\n"' in out
    assert "->len" in out and ".len" in out and "->data" in out and "->buf" in out
    assert "memcpy(" in out and "printf(" in out and "struct ctx" in out


def test_c_recursive_call_is_renamed_with_the_function() -> None:
    code = "int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }"
    result = rename(code, "c")
    new = next(r.new for r in result.renames if r.kind == "function")
    assert result.code.count(f"{new}(") == 2 and "fact" not in result.code


def test_c_declarators_pointers_arrays_function_pointers_and_lists() -> None:
    code = """int f(int (*cb)(int x), char **argv, int k) {
    int a, *p = &a, arr[4] = {0}, (*fp)(int y) = cb;
    for (int i = 0; i < 4; i++) arr[i] = fp(i) + *p + argv[i][0] + k;
    return arr[0];
}"""
    result = rename(code, "c")
    # the prototype parameter names x and y belong to the function-pointer types
    assert set(result.mapping) == {"cb", "argv", "k", "a", "p", "arr", "fp", "i"}
    assert "(int x)" in result.code and "(int y)" in result.code


def test_c_macros_are_left_alone() -> None:
    code = """static int g(int size, int count, int step) {
#define TWICE(v) ((v) + (v) + step)
    int total = TWICE(size * 2);
    CHECK(count);
    return FFMIN(total + 1, BUF_SIZE);
}"""
    result = rename(code, "c")
    # `step` is named in a #define and `count` is a macro's bare argument (it might be
    # pasted or stringified): neither moves; expressions in macro arguments do
    assert set(result.mapping) == {"size", "total"}
    out = result.code
    assert "#define TWICE(v) ((v) + (v) + step)" in out and "CHECK(count);" in out
    assert "TWICE(" in out and "FFMIN(" in out and "BUF_SIZE" in out and "int step" in out


def test_c_names_inside_parse_errors_are_not_renamed() -> None:
    code = "int f(int a, int b) { int c = a + ; b = a @ c; return b; }"
    result = rename_identifiers(code, "c", POOL, Random(0))
    assert result.status in ("changed", "unchanged")
    if result.status == "changed":
        assert check_rename(code, result.code, "c", [(r.old, r.new) for r in result.renames]) is None


def test_c_a_name_in_a_preprocessor_condition_is_never_renamed() -> None:
    code = "int f(int verbose, int n) {\n#ifdef verbose\n    n++;\n#endif\n    return verbose + n;\n}"
    assert set(rename(code, "c").mapping) == {"n"}


def test_c_a_declaration_holding_a_parse_error_declares_nothing_renamable() -> None:
    # `int av_unused flags = ...;` (a macro attribute) parses as a declaration of av_unused
    code = "static int f(int n) {\n    int av_unused flags = get(n);\n    return flags + n;\n}"
    result = rename(code, "c")
    assert "av_unused" not in result.mapping and "flags" not in result.mapping
    assert "int av_unused flags" in result.code


def test_java_names_inside_a_parse_error_are_not_renamed() -> None:
    # a constructor outside its class: `super(...)` is a parse error around `file`
    code = "public Frame(Manager owner, File file) { super(owner, file.getPath()); int k = 0; }"
    result = rename(code, "java")
    assert "file" not in result.mapping and "k" in result.mapping
    assert check_rename(code, result.code, "java", [(r.old, r.new) for r in result.renames]) is None


def test_deep_nesting_is_renamed_or_skipped_never_a_crash() -> None:
    body = "".join(f"if (x == {k}) y = {k}; else " for k in range(400)) + "y = 0;"
    assert rename(f"int f(int x) {{ int y; {body} return y; }}", "c").status == "changed"
    body = "".join(f"if (x == {k}) y = {k}; else " for k in range(12_000)) + "y = 0;"
    result = rename_identifiers(f"int f(int x) {{ int y; {body} return y; }}", "c", POOL, Random(0))
    assert (result.status, result.reason) == ("skipped", "nesting too deep to analyse")


# -- unchanged, skipped, the check ---------------------------------------------------------


def test_nothing_to_rename_is_unchanged_not_skipped() -> None:
    code = "void tick() { counter++; log(counter); }"
    result = rename_identifiers(code, "java", POOL, Random(0))
    assert result.status == "changed" and result.renames[0].kind == "method"
    code = "@Override public void run() { counter++; }"
    result = rename_identifiers(code, "java", POOL, Random(0))
    assert (result.status, result.code) == ("unchanged", code)


def test_mostly_unparseable_code_is_skipped_with_a_reason() -> None:
    result = rename_identifiers("@@ int ) x ( = = ;; @@ @@ @@", "c", POOL, Random(0))
    assert result.status == "skipped" and result.code is None and "parse errors" in result.reason


def test_collisions_are_avoided() -> None:
    code = "int f(int a, int b) { int name0 = a; int name1 = b; return name0 + name1 + name2(a); }"
    taken = ["a", "b", "f", "name0", "name1", "name2", "int", "MAX", "return"]  # in the code, or keywords
    pool = [*taken, "fresh", "other", "third", "fourth"]
    for seed in range(10):
        result = rename(code, "c", seed, pool)
        new = [r.new for r in result.renames]
        assert len(set(new)) == len(new)
        assert not set(new) & set(tokens(code))
        assert set(new) <= {"fresh", "other", "third", "fourth"}


def test_a_broken_rename_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    code = "int f(int a) { int b = a; return b + c; }"

    proposals = iter(["c", "fresh1", "fresh2"])  # the first one is already in the code

    def colliding(pool, rng, taken, language):
        return next(proposals)

    monkeypatch.setattr(rename_module, "_draw", colliding)
    result = rename_identifiers(code, "c", POOL, Random(0))
    assert result.status == "skipped" and result.code is None
    assert result.reason == "check failed: new name 'c' collides with a name already in the function"


@pytest.mark.parametrize(
    "copy, pairs, problem",
    [
        ("int f(int q) { int b = q; return b + c; /* a */ }", [("a", "q")], None),
        ("int f(int q) { int b = q; return b + c; /* q */ }", [("a", "q")], "token"),  # comment
        ("int f(int c) { int b = c; return b + c; /* a */ }", [("a", "c")], "collides"),
        ("int f(int for) { int b = for; return b + c; /* a */ }", [("a", "for")], "plain identifier"),
        ("int f(int q r) { int b = q r; return b + c; /* a */ }", [("a", "q r")], "plain identifier"),
        ("int f(int q) { int b = q; return b - c; /* a */ }", [("a", "q")], "+ became -"),
        ("int f(int q) {  int b = q; return b + c; /* a */ }", [("a", "q")], "between tokens"),
        ("int f(int q) { int b = q; return b + c; /* a */ }", [("a", "q"), ("b", "q")], "two old names"),
    ],
)
def test_check_rename(copy: str, pairs: list[tuple[str, str]], problem: str | None) -> None:
    original = "int f(int a) { int b = a; return b + c; /* a */ }"
    found = check_rename(original, copy, "c", pairs)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_check_rejects_a_copy_with_more_parse_errors() -> None:
    original = "void f(int a) { g(a); }"
    assert "parse errors" in check_rename(original, "void f(int a) { g(a) }", "java", [])


# -- names, determinism, the plugin --------------------------------------------------------


def test_mine_identifiers_ranks_declared_names_and_drops_unsafe_ones() -> None:
    codes = [
        "int f(int len, char *buf) { int i; for (i = 0; i < len; i++) buf[i] = 0; return len; }",
        "int g(int len) { int i = len, MAXV = 2; return i + MAXV; }",
        "int h(char *buf) { int i = 0, for_each = 1; return buf[i] + for_each; }",
        "int k(void) { return env->x; }",
        "int m(void) { return env->y; }",
        "int n(int env) { return env; }",
    ]
    names = mine_identifiers(codes, "c", min_count=1)
    assert names[:3] == ["i", "buf", "len"]  # three, two, two functions; ties by name
    assert "MAXV" not in names  # ALL_CAPS: looks like a macro
    assert "env" not in names  # used as a global more often than declared
    assert mine_identifiers(codes, "c", limit=2, min_count=1) == ["i", "buf"]
    assert mine_identifiers(codes, "c") == ["i", "buf", "len"]  # min_count=2


def test_same_seed_same_copy_in_any_order() -> None:
    codes = [
        "int f(int a, int b) { int c = a * b; return c; }",
        "int g(int n) { int s = 0; for (int i = 0; i < n; i++) s += i; return s; }",
        "int h(char *p) { return p[0]; }",
    ]
    transform = create_transform("rename", "c", POOL)
    first, stats = transform_all(transform, codes, seed=7)
    again, _ = transform_all(transform, codes, seed=7)
    reordered, _ = transform_all(transform, codes[::-1], seed=7)
    other, _ = transform_all(transform, codes, seed=8)
    assert first == again == reordered[::-1]
    assert other != first
    assert (stats.total, stats.changed, stats.unchanged, stats.skipped) == (3, 3, 0, 0)
    keyed, _ = transform_all(transform, codes, seed=7, keys=[10, 11, 12])
    assert keyed[0] == transform.apply(codes[0], function_rng(7, codes[0], 10))


def test_unknown_transform_lists_the_known_ones() -> None:
    with pytest.raises(UnknownPluginError) as error:
        create_transform("renam", "c")
    assert str(error.value) == "unknown transform 'renam'; known transforms: " + ", ".join(TRANSFORMS.names())
    assert "rename" in TRANSFORMS.names()


def test_a_transform_is_one_small_class() -> None:
    class Upper(Transform):
        def apply(self, code: str, rng: Random) -> str | None:
            return code if code.isupper() else None

    transform = Upper("c")
    _, stats = transform_all(transform, ["ABC", "abc"])
    assert (stats.unchanged, stats.skipped) == (1, 1)


def test_real_functions_are_renamed_and_pass_the_check() -> None:
    bcb = require_data("bigclonebench", "data.jsonl")
    devign = require_data("devign", "test.jsonl")
    for path, language in ((bcb, "java"), (devign, "c")):
        with open(path, encoding="utf-8") as handle:
            codes = [json.loads(next(handle))["func"] for _ in range(40)]
        names = mine_identifiers(codes, language, min_count=1)
        transform = create_transform("rename", language, names)
        copies, stats = transform_all(transform, codes, seed=0)
        assert stats.skipped == 0, stats.reasons
        assert stats.changed >= 36
        assert all(c is not None and len(c) > 0 for c in copies)


def test_java_overloads_in_one_snippet_are_renamed_together_or_not_at_all() -> None:
    code = """class A {
    int f(int a) { return f(a, 1); }
    int f(int a, int b) { return a + b; }
}"""
    # f(int) calls the other overload, so it cannot be renamed alone; neither is renamed
    result = rename(code, "java")
    assert "f" not in {r.old for r in result.renames if r.kind == "method"}
    top = "int f(int a) { return f(a, 1); }\nint f(int a, int b) { return a + b; }"
    result = rename(top, "java")
    assert [r.old for r in result.renames if r.kind == "method"] == []


@pytest.mark.parametrize("language, code", [
    ("java", "public int sum(int[] values, int count) { int total = 0; // the total\n"
             "  for (int i = 0; i < count; i++) { total += values[i]; } return total + this.va; }"),
    ("c", "static int count_nodes(struct node *head, int vb) { int n = 0; /* walk */\n"
          "  for (struct node *p = head; p; p = p->next) n += v1; return n + strlen(\"n\"); }"),
])
def test_canonical_names_are_the_same_for_every_renaming_and_idempotent(language: str, code: str) -> None:
    """The canonical form renames what ``rename`` renames, to fa, va, vb ... in order of first
    appearance, skipping a name a remaining word uses (the field ``va``); any consistent
    renaming, even one that draws ``va`` or ``fa``, has the same form, and the form is its own."""
    from avatar.code.rename import canonical_identifiers

    canonical = canonical_identifiers(code, language)
    assert canonical.status == "changed" and canonical.code is not None
    assert "fa" in canonical.code and "vb" in canonical.code
    if language == "java":
        assert "this.va" in canonical.code and "int va" not in canonical.code  # the field keeps va
    assert "// the total" in canonical.code or "/* walk */" in canonical.code  # comments untouched
    assert canonical_identifiers(canonical.code, language).code == canonical.code
    pool = ["buf", "len", "acc", "idx", "res", "arr", "va", "fa", "vc"]
    for seed in range(4):
        renamed = rename_identifiers(code, language, pool, Random(seed))
        assert renamed.status == "changed"
        assert canonical_identifiers(renamed.code, language).code == canonical.code
    assert create_transform("canonical", language).apply(code, Random(0)) == canonical.code
