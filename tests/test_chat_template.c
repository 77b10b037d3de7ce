/* Tests of the chat template renderer (src/core/jinja*.c, src/core/chat_template.c) and of
 * `ominix chat-template`:
 *   - the reference cases: every committed template x conversation x flags, rendered here and
 *     compared byte for byte with transformers' apply_chat_template output in
 *     tests/data/chat_templates/reference.json (tools/make_chat_template_reference.py);
 *   - unit cases of the expression language, whitespace control, loops, macros and filters,
 *     whose expected strings are what jinja2 3.1.6 renders in transformers' environment;
 *   - error paths: unsupported constructs and syntax errors name line:column, a template's
 *     raise_exception() message comes back as is, and runaway templates hit the limits;
 *   - loading a model folder (tokenizer_config.json forms, chat_template.jinja) and the CLI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/chat_template.h"
#include "core/error.h"
#include "core/jinja.h"
#include "test_util.h"

#define DATA OM_TEST_DATA_DIR "/chat_templates/"

/* ---- unit cases ------------------------------------------------------------------------- */

static const char *UNIT_VARS = "{\"s\": \"Hello World\", \"n\": 7, \"f\": 2.5, \"l\": [3, 1, 2], \"d\": {\"b\": 2, \"a\": 1}, \"u\": \"h\\u00e9llo w\\u00f6rld\", \"ms\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}], \"e\": [], \"t\": true, \"z\": null}";

static const struct {
    const char *src, *want;
} UNIT[] = {
    {"a\n  {% if t %}\n  x\n  {% endif %}\nb",
     "a\n  x\nb"},
    {"a  {% if t %}x{% endif %}  b",
     "a  x  b"},
    {"a\n  {{ n }}\n  {# c #}\nb",
     "a\n  7\nb"},
    {"  {%+ if t %}x{% endif %}",
     "  x"},
    {"{% if t +%}\nx{% endif %}",
     "\nx"},
    {"a {{- n -}} b",
     "a7b"},
    {"a\n{%- if t -%}\n  x  \n{%- endif -%}\nb",
     "axb"},
    {"{% raw %}{{ n }}{% endraw %}",
     "{{ n }}"},
    {"x\n",
     "x"},
    {"{# only a comment #}\n",
     ""},
    {"{{ 'it\\'s' ~ \"\\u00e9\\n\" ~ 'a' 'b' }}",
     "it's\303\251\nab"},
    {"{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1e3 }} {{ 0.1 + 0.2 }}",
     "7 9 3 -4 2 3.5 1024 1000.0 0.30000000000000004"},
    {"{{ n > 5 and n < 10 }} {{ 1 < n < 5 }} {{ not t }} {{ z or 'dflt' }} {{ 0 and 1 }}",
     "True False False dflt 0"},
    {"{{ 'a' in 'cat' }} {{ 2 not in l }} {{ 'a' in d }} {{ 'x' ~ n ~ z ~ t }}",
     "True False True x7NoneTrue"},
    {"{{ 'yes' if n is odd else 'no' }}|{{ 'x' if z }}|",
     "yes||"},
    {"{{ [1, 'a', none, true, 1.5, {'k': (1, 2)}] }} {{ (1,) }} {{ {'q': \"it's\"} }}",
     "[1, 'a', None, True, 1.5, {'k': (1, 2)}] (1,) {'q': \"it's\"}"},
    {"{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[::-1] }} {{ l[:-1] }} {{ s[6:] }} {{ s[::2] }} {{ u[1:4] }} {{ u[-1] }} {{ l.1 }}",
     "3 2 [1, 2] [2, 1, 3] [3, 1] World HloWrd \303\251ll d 1"},
    {"{{ s | upper }} {{ s | lower }} {{ 'hELLO wORLD' | capitalize }} {{ 'hello-world foo' | title }} {{ u | length }} {{ l | count }}",
     "HELLO WORLD hello world Hello world Hello-World Foo 11 3"},
    {"{{ '  x  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ z | default('d') }}|{{ '' | default('d', true) }}|{{ missing | d('m') }}",
     "x|hi|None|d|m"},
    {"{{ l | join(', ') }} {{ ms | map(attribute='role') | join('/') }} {{ l | first }} {{ l | last }} {{ l | reverse | list }} {{ s | reverse }}",
     "3, 1, 2 user/assistant/user 3 2 [2, 1, 3] dlroW olleH"},
    {"{{ l | sort }} {{ ['b', 'A', 'a'] | sort }} {{ ['b', 'A', 'a'] | unique | list }} {{ l | sort(reverse=true) }} {{ ms | sort(attribute='content') | map(attribute='content') | list }}",
     "[1, 2, 3] ['A', 'a', 'b'] ['b', 'A'] [3, 2, 1] ['bye', 'hi', 'yo']"},
    {"{{ d | dictsort }} {{ d | items | list }} {{ d | list }} {{ 'ab' | list }}",
     "[('a', 1), ('b', 2)] [('b', 2), ('a', 1)] ['b', 'a'] ['a', 'b']"},
    {"{{ ms | selectattr('role', 'equalto', 'user') | list | length }} {{ ms | rejectattr('role', 'eq', 'user') | map(attribute='content') | first }} {{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }}",
     "2 yo [1, 3] [1, 3]"},
    {"{{ s | replace('o', '0') }} {{ s | replace('l', 'L', 2) }} {{ n | string ~ '!' }} {{ '42' | int + 1 }} {{ '3.5' | float }} {{ 'x' | int }} {{ 3.7 | int }} {{ -3 | abs }}",
     "Hell0 W0rld HeLLo World 7! 43 3.5 0 3 3"},
    {"{{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ [1, 2, 3] | sum }} {{ l | min }} {{ l | max }}",
     "2.0 3.14 3.0 6 1 3"},
    {"{{ d | tojson }} {{ {'k': [1, 2.0, none, true, '\303\251\"\\n']} | tojson }} {{ d | tojson(indent=2) }} {{ d | tojson(sort_keys=true) }} {{ '\303\251' | tojson(ensure_ascii=true) }}",
     "{\"b\": 2, \"a\": 1} {\"k\": [1, 2.0, null, true, \"\303\251\\\"\\n\"]} {\n  \"b\": 2,\n  \"a\": 1\n} {\"a\": 1, \"b\": 2} \"\\u00e9\""},
    {"{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(width='> ', blank=true) }}",
     "a\n  b\n\n  c|  a\n  b|a\n> \n> b"},
    {"{{ '<a href=\"x\">&</a>' | e }} {{ '<b>' | safe }} {{ 'one two  three' | wordcount }} {{ 'x' | center(5) }}|",
     "&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt; <b> 3   x  |"},
    {"{{ '%s-%05.1f-%d' | format('a', 3.14159, 7) }} {{ '%s and %s' % ('x', 'y') }}",
     "a-003.1-7 x and y"},
    {"{{ [1, 2, 3, 4, 5] | batch(2) | list }} {{ ms | map(attribute='missing', default='?') | join }}",
     "[[1, 2], [3, 4], [5]] ???"},
    {"{{ n is defined }} {{ nope is defined }} {{ z is none }} {{ s is string }} {{ n is number }} {{ f is float }} {{ n is integer }} {{ t is boolean }} {{ d is mapping }} {{ l is sequence }} {{ l is iterable }} {{ n is iterable }}",
     "True False True True True True True True True True True False"},
    {"{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ n is eq 7 }} {{ n is equalto 8 }} {{ t is true }} {{ 1 is true }} {{ z is false }} {{ 'abc' is lower }} {{ n is not none }} {{ n is gt 3 }} {{ 'u' is in 'user' }}",
     "True True True True False True False False True True True True"},
    {"{{ s.startswith('Hell') }} {{ s.endswith(('x', 'ld')) }} {{ s.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a-b-c'.rsplit('-', 1) }}",
     "True True ['Hello', 'World'] ['a', 'b', '', 'c'] ['a', 'b c'] ['a-b', 'c']"},
    {"{{ '  x  '.strip() }}|{{ '\\n\\nx\\n'.lstrip('\\n') }}|{{ 'x--'.rstrip('-') }}|{{ s.replace('l', '') }}|{{ s.find('o') }} {{ u.find('w') }} {{ s.count('l') }} {{ s.rfind('o') }}",
     "x|x\n|x|Heo Word|4 6 3 7"},
    {"{{ s.upper() }} {{ s.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ '{} + {} = {x}'.format(1, 2, x=3) }} {{ '-'.join(['a', 'b']) }}",
     "HELLO WORLD hello world Hello World Hello 1 + 2 = 3 a-b"},
    {"{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'a-b'.partition('-') }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ '7'.zfill(3) }} {{ 'pre_x'.removeprefix('pre_') }}",
     "['a', 'b', 'c'] ('a', '-', 'b') True True 007 x"},
    {"{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 0) }} {{ d.items() | list }} {{ d.values() | list }} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
     "1 None 0 [('b', 2), ('a', 1)] [2, 1] b=2;a=1;"},
    {"{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }},{% endfor %}",
     "10TrueFalse332,21FalseFalse321,32FalseTrue310,"},
    {"{% for x in l %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}",
     "[|1][3|2][1|]"},
    {"{% for x in l if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}|{% for x in e %}x{% else %}empty{% endfor %}",
     "3:1/2 2:2/2 |empty"},
    {"{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
     "13"},
    {"{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}{% for c in 'h\303\251' %}{{ c }}.{% endfor %}",
     "3 7 h.\303\251."},
    {"{% for x in l %}{{ loop.cycle('odd', 'even') }} {% endfor %}{% for x in [1, 1, 2] %}{{ loop.changed(x) }} {% endfor %}",
     "odd even odd True False True "},
    {"{% for o in [1, 2] %}{% for i in [1, 2] %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %}",
     "121|122|"},
    {"{% set x = 1 %}{% for i in l %}{% set x = x + i %}{{ x }},{% endfor %}{{ x }}",
     "4,2,3,1"},
    {"{% set ns = namespace(total=0, items='') %}{% for i in l %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}",
     "6"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set blk %}in {{ n }}{% endset %}[{{ blk }}] {% set up | upper %}shout{% endset %}{{ up }}",
     "12 [in 7] SHOUT"},
    {"{% with y = n * 2 %}{{ y }}{% endwith %}{{ y is defined }} {% filter upper %}quiet {{ s }}{% endfilter %}",
     "14False QUIET HELLO WORLD"},
    {"{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Yo') }} {{ greet(greeting='Hey', name='Cy') }}",
     "Hi, Ann! Yo, Bob! Hey, Cy!"},
    {"{% macro f(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, k=4) }}",
     "1|(2, 3)|{'k': 4}"},
    {"{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * fact(k - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}",
     "120"},
    {"{% set x = 'outer' %}{% macro show() %}{{ x }}{% endmacro %}{% set x = 'later' %}{{ show() }}",
     "later"},
    {"{% macro m(v) %}{{ v | tojson }}{% endmacro %}{{ m({'a': [1]}) | length }} {{ m('x') ~ '!' }}",
     "10 \"x\"!"},
    {"{{ missing }}|{{ missing | length }}|{{ missing is iterable }}|{% for x in missing %}x{% endfor %}|{{ missing == missing }}|{{ d.nope }}|{{ z.x }}",
     "|0|True||True||"},
    {"{{ '{:>5}|{:<4}|{:^7}|{:*^7}|{:05d}|{:.2f}|{:+d}|{:,}|{:x}|{:.1%}|{!r:>6}'.format(1, 'ab', 'mid', 'c', 42, 3.14159, 5, 1234567, 255, 0.1234, 'q') }}",
     "    1|ab  |  mid  |***c***|00042|3.14|+5|1,234,567|ff|12.3%|   'q'"},
    {"{% for g in ms | groupby('role') %}{{ g.grouper }}={{ g.list | map(attribute='content') | join(',') }};{% endfor %} {{ ms | groupby('role') | map('first') | list }}",
     "assistant=yo;user=hi,bye; ['assistant', 'user']"},
    {"{{ 'stra\303\237e'.upper() }} {{ '\316\243\316\221\316\243'.lower() }} {{ '\307\206a'.title() }} {{ '\303\237' | title }} {{ u.upper() }} {{ 'a\tb'.expandtabs(4) }}",
     "STRASSE \317\203\316\261\317\202 \307\205a SS H\303\211LLO W\303\226RLD a   b"},
    {"{{ d.keys() }} {{ d.items() }} {{ 'a' in d.keys() }} {{ d.values() | list }} {{ '  a b  '.split(None, 1) }} {{ 1250 | round(-2) }}",
     "dict_keys(['b', 'a']) dict_items([('b', 2), ('a', 1)]) True [2, 1] ['a', 'b  '] 1200"},
    {"{{ range(3) | list }} {{ range(1, 10, 4) | list }} {{ dict(a=1, b='x') }} {{ namespace(k=1).k }}",
     "[0, 1, 2] [1, 5, 9] {'a': 1, 'b': 'x'} 1"},
};

static char *render_with(const char *src, const char *vars_json, const jinja_limits *lim, size_t *len) {
    jinja_template *t = jinja_compile(src, strlen(src), "chat template");
    if (!t) return NULL;
    cJSON *vars = vars_json ? cJSON_Parse(vars_json) : NULL;
    char *out = jinja_render(t, vars, lim, len);
    cJSON_Delete(vars);
    jinja_template_free(t);
    return out;
}

static void test_unit_cases(void) {
    for (size_t i = 0; i < sizeof UNIT / sizeof UNIT[0]; i++) {
        size_t len = 0;
        char *out = render_with(UNIT[i].src, UNIT_VARS, NULL, &len);
        CHECKF(out && len == strlen(UNIT[i].want) && !memcmp(out, UNIT[i].want, len),
               "template %s\n  want %s\n  got  %s", UNIT[i].src, UNIT[i].want, out ? out : om_last_error());
        free(out);
    }
}

/* ---- errors and limits ------------------------------------------------------------------ */

static void expect_compile_error(const char *src, const char *want) {
    jinja_template *t = jinja_compile(src, strlen(src), "chat template");
    CHECKF(!t && strstr(om_last_error(), want), "compiling %s: want error containing \"%s\", got \"%s\"", src, want,
           t ? "(compiled)" : om_last_error());
    jinja_template_free(t);
}

static void expect_render_error(const char *src, const char *vars, const jinja_limits *lim, const char *want,
                                bool exact) {
    char *out = render_with(src, vars, lim, NULL);
    const char *msg = om_last_error();
    bool ok = !out && (exact ? !strcmp(msg, want) : strstr(msg, want) != NULL);
    CHECKF(ok, "rendering %s: want error %s\"%s\", got \"%s\"", src, exact ? "" : "containing ", want,
           out ? out : msg);
    free(out);
}

static void test_errors(void) {
    /* unsupported constructs and syntax errors carry line:column */
    expect_compile_error("{{ x | wordwrap }}", "chat template 1:8: unsupported filter 'wordwrap'");
    expect_compile_error("a\n  {{ x is frobnicated }}", "chat template 2:11: unsupported test 'frobnicated'");
    expect_compile_error("{% include 'other.jinja' %}", "chat template 1:4: unsupported tag 'include'");
    expect_compile_error("{% for x in y recursive %}{% endfor %}", "chat template 1:15: unsupported construct");
    expect_compile_error("{{ f(*args) }}", "chat template 1:6: unsupported construct");
    expect_compile_error("line one\n{% for x in xs %}\n{{ x }}", "chat template 2:4: unexpected end of template");
    expect_compile_error("{% if a %}x{% endfor %}", "chat template 1:15: unexpected 'endfor'");
    expect_compile_error("{{ 1 + }}", "chat template 1:8: unexpected 'end of print statement'");
    expect_compile_error("{{ 'unterminated }}", "chat template 1:4: unterminated string literal");
    expect_compile_error("{% break %}", "chat template 1:4: 'break' outside of a loop");
    expect_compile_error("{% frobnicate %}", "chat template 1:4: unknown tag 'frobnicate'");
    expect_compile_error("{{ (1 }}", "chat template 1:");
    expect_compile_error("{# never closed", "missing end of comment tag");

    /* runtime errors: raise_exception's message as is; others located */
    expect_render_error("{{ raise_exception('Bad role: ' ~ r) }}", "{\"r\": \"tool\"}", NULL, "Bad role: tool", true);
    expect_render_error("{% if true %}\n  {{- raise_exception('Conversation roles must alternate') }}{% endif %}",
                        NULL, NULL, "Conversation roles must alternate", true);
    expect_render_error("{{ m.x.y }}", "{\"m\": {}}", NULL, "chat template 1:8: 'dict object' has no attribute 'x'",
                        true);
    expect_render_error("{{ nope() }}", NULL, NULL, "chat template 1:8: 'nope' is undefined", true);
    expect_render_error("{{ 'a' + 1 }}", NULL, NULL, "can only concatenate str (not \"int\") to str", false);
    expect_render_error("{{ l.append(4) }}", "{\"l\": []}", NULL,
                        "access to attribute 'append' of 'list' object is unsafe.", false);
    expect_render_error("{% set ns = namespace() %}{% set ns._secret = 1 %}", NULL, NULL,
                        "cannot store underscore-prefixed attributes", false);
    expect_render_error("{% set ns = namespace(_x=1) %}", NULL, NULL,
                        "cannot store underscore-prefixed attributes on a namespace, but got '_x'", false);
    expect_render_error("{{ '%d' % 1e300 }}", NULL, NULL, "64-bit integer", false);
    expect_render_error("{{ 1 // 0 }}", NULL, NULL, "integer division or modulo by zero", false);
    expect_render_error("{{ x | tojson }}", NULL, NULL, "Object of type Undefined is not JSON serializable", false);

    /* limits */
    expect_render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, NULL,
                        "maximum recursion depth exceeded", false);
    jinja_limits small = {.max_output = 1000};
    expect_render_error("{% for i in range(1000) %}0123456789{% endfor %}", NULL, &small, "exceeds the limit", false);
    expect_render_error("{{ 'x' * 2000 }}", NULL, &small, "limit", false);
    expect_render_error("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                        "{% endfor %}{{ ns.s | length }}",
                        NULL, NULL, "limit", false);
    jinja_limits few = {.max_iterations = 10};
    expect_render_error("{% for i in range(100) %}{% endfor %}", NULL, &few, "too many loop iterations", false);
    expect_render_error("{{ range(1000000) | length }}", NULL, NULL, "Range too big", false);
    char *deep = malloc(5000);
    if (deep) {
        size_t o = 0;
        o += (size_t)sprintf(deep, "{{ ");
        for (int i = 0; i < 1000; i++) deep[o++] = '(';
        deep[o++] = '1';
        for (int i = 0; i < 1000; i++) deep[o++] = ')';
        strcpy(deep + o, " }}");
        expect_compile_error(deep, "nested too deeply");
        free(deep);
    }

    /* a namespace that holds itself must not leak (checked under ASan) */
    size_t len;
    char *out = render_with("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}", NULL, NULL,
                            &len);
    CHECK(out && !strcmp(out, "True"));
    free(out);
}

/* ---- reference cases -------------------------------------------------------------------- */

static cJSON *read_json(const char *path) {
    char *text = om_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECKF(j != NULL, "cannot read %s", path);
    return j;
}

static const cJSON *find_named(const cJSON *arr, const char *name) {
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return e;
    }
    return NULL;
}

static om_chat_template *load_template_file(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, DATA "%s.jinja", name);
    size_t len;
    char *src = om_test_read_file(path, &len);
    CHECKF(src != NULL, "cannot read %s", path);
    if (!src) return NULL;
    om_chat_template *t = om_chat_template_create(src, len);
    CHECKF(t != NULL, "%s: %s", path, om_last_error());
    free(src);
    return t;
}

static void test_reference(void) {
    cJSON *templates = read_json(DATA "templates.json");
    cJSON *convs = read_json(DATA "conversations.json");
    cJSON *ref = read_json(DATA "reference.json");
    if (!templates || !convs || !ref) goto done;
    const cJSON *conversations = cJSON_GetObjectItemCaseSensitive(convs, "conversations");
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(ref, "special_tokens");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(ref, "cases");
    int total = 0, matched = 0;
    const cJSON *tspec;
    cJSON_ArrayForEach(tspec, templates) {
        const char *name = tspec->string;
        om_chat_template *t = load_template_file(name);
        if (!t) continue;
        int t_total = 0, t_matched = 0;
        const cJSON *cs;
        cJSON_ArrayForEach(cs, cases) {
            if (strcmp(cJSON_GetObjectItemCaseSensitive(cs, "template")->valuestring, name)) continue;
            const char *cname = cJSON_GetObjectItemCaseSensitive(cs, "conversation")->valuestring;
            const cJSON *conv = find_named(conversations, cname);
            CHECKF(conv != NULL, "conversation %s missing", cname);
            if (!conv) continue;
            /* the special tokens a tokenizer would pass, then the case's own variables */
            cJSON *extra = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(special, name), true);
            if (!extra) extra = cJSON_CreateObject();
            const cJSON *ce = cJSON_GetObjectItemCaseSensitive(cs, "extra"), *e;
            cJSON_ArrayForEach(e, ce) {
                cJSON_DeleteItemFromObjectCaseSensitive(extra, e->string);
                cJSON_AddItemToObject(extra, e->string, cJSON_Duplicate(e, true));
            }
            om_chat_inputs in = {
                .messages = cJSON_GetObjectItemCaseSensitive(conv, "messages"),
                .tools = cJSON_GetObjectItemCaseSensitive(conv, "tools"),
                .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "add_generation_prompt")),
                .extra = extra,
            };
            size_t len = 0;
            char *out = om_chat_template_render(t, &in, &len);
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(cs, "output");
            bool ok;
            if (cJSON_IsString(want)) {
                ok = out && len == strlen(want->valuestring) && !memcmp(out, want->valuestring, len);
                CHECKF(ok, "%s x %s (add_generation_prompt=%d): output differs\n  want: %s\n  got:  %s", name, cname,
                       in.add_generation_prompt, want->valuestring, out ? out : om_last_error());
            } else {
                const char *type = cJSON_GetObjectItemCaseSensitive(cs, "error_type")->valuestring;
                const char *msg = cJSON_GetObjectItemCaseSensitive(cs, "error")->valuestring;
                /* raise_exception must give the exact message; other errors must say the same
                 * thing after our "chat template L:C: " prefix */
                ok = !out && (!strcmp(type, "TemplateError") ? !strcmp(om_last_error(), msg)
                                                             : strstr(om_last_error(), msg) != NULL);
                CHECKF(ok, "%s x %s (add_generation_prompt=%d): want %s \"%s\", got \"%s\"", name, cname,
                       in.add_generation_prompt, type, msg, out ? out : om_last_error());
            }
            free(out);
            cJSON_Delete(extra);
            t_total++;
            t_matched += ok;
        }
        printf("  %-18s %3d/%3d cases match\n", name, t_matched, t_total);
        total += t_total;
        matched += t_matched;
        om_chat_template_free(t);
    }
    printf("chat templates: %d/%d reference cases match byte for byte\n", matched, total);
    CHECK(total > 400);
done:
    cJSON_Delete(templates);
    cJSON_Delete(convs);
    cJSON_Delete(ref);
}

/* strftime_now: Llama 3.2's template falls back to today's date. */
static void test_strftime_now(void) {
    om_chat_template *t = load_template_file("llama3.2");
    if (!t) return;
    char today[64], vars[256];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(today, sizeof today, "%d %b %Y", &tm);
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"hi\"}]");
    snprintf(vars, sizeof vars, "{\"bos_token\": \"<|begin_of_text|>\", \"date_string\": \"%s\"}", today);
    cJSON *with_date = cJSON_Parse(vars), *without = cJSON_Parse("{\"bos_token\": \"<|begin_of_text|>\"}");
    om_chat_inputs a = {.messages = msgs, .extra = with_date}, b = {.messages = msgs, .extra = without};
    char *x = om_chat_template_render(t, &a, NULL), *y = om_chat_template_render(t, &b, NULL);
    CHECKF(x && y && !strcmp(x, y) && strstr(x, today), "strftime_now: %s vs %s", x ? x : "-", y ? y : om_last_error());
    free(x);
    free(y);
    cJSON_Delete(msgs);
    cJSON_Delete(with_date);
    cJSON_Delete(without);
    om_chat_template_free(t);
}

/* ---- model folders and the CLI ---------------------------------------------------------- */

static void test_model_folder_and_cli(void) {
    const char *dir = om_test_tmpdir("chat_template_model");
    CHECK(dir != NULL);
    if (!dir) return;
    char path[4200], cmd[9000], out[8192], err[4096];
    /* chat_template as a list of named templates; special tokens as AddedToken objects */
    const char *cfg =
        "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<s>\", \"lstrip\": false},"
        " \"eos_token\": \"</s>\", \"pad_token\": null,"
        " \"chat_template\": ["
        "  {\"name\": \"default\", \"template\": \"{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}"
        "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}\"},"
        "  {\"name\": \"tool_use\", \"template\": \"TOOLS {{ tools | map(attribute='function.name') | join(',') }}"
        "{% if enable_thinking is defined %} thinking={{ enable_thinking }}{% endif %}\"}]}";
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    CHECK(om_test_write_file(path, cfg, strlen(cfg)) == 0);
    const char *msgs = "[{\"role\": \"user\", \"content\": \"h\\u00e9llo\", \"name\": null}]";
    snprintf(path, sizeof path, "%s/messages.json", dir);
    CHECK(om_test_write_file(path, msgs, strlen(msgs)) == 0);
    const char *tools = "[{\"type\": \"function\", \"function\": {\"name\": \"a\"}},"
                        " {\"type\": \"function\", \"function\": {\"name\": \"b\"}}]";
    snprintf(path, sizeof path, "%s/tools.json", dir);
    CHECK(om_test_write_file(path, tools, strlen(tools)) == 0);

    om_chat_template *t = om_chat_template_load(dir);
    CHECKF(t != NULL, "load: %s", om_last_error());
    if (t) {
        CHECK(om_chat_template_has(t, "default") && om_chat_template_has(t, "tool_use"));
        om_chat_template_free(t);
    }

    snprintf(cmd, sizeof cmd, "%s chat-template --model %s --messages %s/messages.json --add-generation-prompt",
             OM_CLI_PATH, dir, dir);
    int rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 0 && !strcmp(out, "<s>[user] h\xc3\xa9llo</s>[assistant]"), "cli default: rc=%d out=%s err=%s", rc,
           out, err);
    snprintf(cmd, sizeof cmd, "%s chat-template --model %s --messages %s/messages.json --tools %s/tools.json --no-thinking",
             OM_CLI_PATH, dir, dir, dir);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 0 && !strcmp(out, "TOOLS a,b thinking=False"), "cli tool_use: rc=%d out=%s err=%s", rc, out, err);

    /* chat_template.jinja takes priority over tokenizer_config.json */
    const char *jinja = "FILE {{ messages | length }}{{ '\\n' }}\n";
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    CHECK(om_test_write_file(path, jinja, strlen(jinja)) == 0);
    snprintf(cmd, sizeof cmd, "%s chat-template --model %s --messages %s/messages.json", OM_CLI_PATH, dir, dir);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 0 && !strcmp(out, "FILE 1\n"), "cli chat_template.jinja: rc=%d out=[%s] err=%s", rc, out, err);

    /* errors reach the user with their position, and a bad option is a usage error */
    const char *bad = "{{ messages | wordwrap }}";
    CHECK(om_test_write_file(path, bad, strlen(bad)) == 0);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 1 && strstr(err, "chat template 1:15: unsupported filter 'wordwrap'"), "cli error: rc=%d err=%s", rc,
           err);
    snprintf(cmd, sizeof cmd, "%s chat-template --model %s --frobnicate", OM_CLI_PATH, dir);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECK(rc == 2);

    /* the real Qwen3 folder from the shared data, when present */
    snprintf(path, sizeof path, "%s/../../../shared/data/tokenizers/qwen3/tokenizer_config.json", OM_TEST_DATA_DIR);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        snprintf(cmd, sizeof cmd,
                 "%s chat-template --model %s/../../../shared/data/tokenizers/qwen3 --messages %s/messages.json "
                 "--add-generation-prompt --no-thinking",
                 OM_CLI_PATH, OM_TEST_DATA_DIR, dir);
        rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
        CHECKF(rc == 0 && !strcmp(out, "<|im_start|>user\nh\xc3\xa9llo<|im_end|>\n<|im_start|>assistant\n"
                                        "<think>\n\n</think>\n\n"),
               "cli qwen3: rc=%d out=%s err=%s", rc, out, err);
    }
}

int main(void) {
    test_unit_cases();
    test_errors();
    test_reference();
    test_strftime_now();
    test_model_folder_and_cli();
    return om_test_finish();
}
