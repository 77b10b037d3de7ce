#!/usr/bin/env python3
"""Reference outputs for the tokenizer test (tests/test_tokenizer.c).

Runs Hugging Face `tokenizers` on every string of tests/data/tokenizers/corpus.json for each
tokenizer folder under tests/data/tokenizers/ and writes <name>_reference.json with:
  - ids with add_special_tokens=False and =True, and with special tokens split (encoded as text);
  - decode(ids) with skip_special_tokens False and True;
  - decodes of id sequences chosen to exercise the decoder's edge cases (lone bytes of a UTF-8
    character, special tokens mid-text), so that lossy UTF-8 handling is pinned too.

    python3 tools/make_tokenizer_reference.py            # references from the committed corpus
    python3 tools/make_tokenizer_reference.py --corpus   # rebuild corpus.json first

The corpus is built here (build_corpus) so that it can be regenerated and extended by hand, and
so are the small synthetic tokenizers (build_synthetic, trained on the corpus) that exercise the
options Qwen3 and Llama-2 do not use: Metaspace, Digits, Split behaviours, added-token flags,
normalized added tokens, subword prefix/suffix, unk fusing, ignore_merges, other decoders.
"""
import argparse
import json
import os
import random
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "tokenizers")
NAMES = ["qwen3", "llama2"]
# Small tokenizers trained here on the corpus, to pin options the two real ones do not use.
SYNTH = ["synth_bytelevel", "synth_metaspace", "synth_suffix", "synth_split", "synth_nodecoder", "synth_regex"]


def build_corpus():
    c = []
    add = c.append
    # --- empty, whitespace, control -------------------------------------------------------
    for s in ["", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "\n\n\n", " \n ", "\t\t  \n",
              "  leading", "trailing  ", "  both  ", "a  b", "a   b    c", "a\tb", "a\t\tb",
              "line1\nline2", "line1\r\nline2\r\n", "para\n\n\npara", " \r\n \r\n", "\r", "x\ry",
              "\u00a0", "a\u00a0b", "a\u2003b", "a\u3000b", "a\u200bb", "a\u180eb", "a\u2028b\u2029c",
              "a\u0085b", "\u000b\u000c", "\x01\x02\x1f\x7f", "tab\tsep\tvalues\n1\t2\t3\n",
              "    indented code", "\n    def f():\n        return 1\n", " \t \n\t ", "end with newline\n",
              "   \n", "x \n y", "x  \n\n  y", "\t\n\r\n\t"]:
        add(s)
    # --- English, contractions, punctuation -------------------------------------------------
    for s in ["Hello world", "hello world!", "Hello, World! How are you?", "The quick brown fox jumps over the lazy dog.",
              "I'm you're he's she'll we've they'd it's", "I'M YOU'RE HE'S SHE'LL WE'VE THEY'D",
              "don't can't won't shouldn't", "DON'T 'S 'T 'RE 'VE 'M 'LL 'D", "'s'''t", "rock 'n' roll",
              "O'Neil's dog", "The cat's toy's colour", "Ugh...", "What?!?!", "--double--dash--", "a—b–c",
              "\u201cquoted\u201d \u2018single\u2019", "\"straight\" 'quotes'", "(parens) [brackets] {braces}",
              "e-mail: someone@example.com", "https://huggingface.co/docs/tokenizers?x=1&y=2#frag",
              "C:\\Windows\\System32", "/usr/local/bin/python3", "#hashtag @mention $100 50% ^caret &amp;",
              "!!!!!!!!!!!!", "??", "....", ",,,;;;:::", "a.b.c.d", "U.S.A.", "Mr. Smith Jr.", "100% sure",
              "CamelCaseWord", "snake_case_word", "kebab-case-word", "SCREAMING_SNAKE", "mixedCASE123abc",
              "ALLCAPS SENTENCE HERE", "iPhone eBay McDonald's", "x=y+z*2/3-1", "a<b>c", "<html><body>",
              "1st 2nd 3rd 4th", "It's 5 o'clock", "ſ long s 's 'ſ", "'S 'ſ", "Ké'S"]:
        add(s)
    # --- numbers ------------------------------------------------------------------------------
    for s in ["0", "7", "12", "123", "1234", "12345", "123456789012345678901234567890", "3.14159",
              "1,000,000", "1e-10", "-42", "+7", "0x1F", "0b1010", "2024-01-15", "12:34:56",
              "v1.2.3-beta.4", "$1,234.56", "€99,99", "¥1000", "1/2 ¼ ½ ¾", "²³¹", "Ⅷ Ⅻ", "٠١٢٣٤٥٦٧٨٩",
              "०१२३४५", "๐๑๒", "１２３", "phone: +1 (555) 123-4567", "3rd", "A1B2C3", "1.2.3.4",
              "99999999999", "000000", "12 34 56", "π≈3.14"]:
        add(s)
    # --- scripts ------------------------------------------------------------------------------
    for s in ["café résumé naïve Zoë", "Ça va? À bientôt! Où est l'hôtel?", "Straße Größe Übermaß",
              "Ångström Øresund Æsir", "Dziękuję bardzo, zażółć gęślą jaźń", "Čeština: příliš žluťoučký kůň",
              "Türkçe: İstanbul ıslak ŞĞ", "Español: ¿Qué tal? ¡Olé!", "Português: ação coração",
              "Tiếng Việt: Xin chào thế giới", "Română: școală țară", "Íslenska: Þetta er ðæ",
              "Привет, мир!", "Съешь же ещё этих мягких французских булок", "Українська: Ґґ Єє Її",
              "Српски: Ђорђе Љубав", "Ελληνικά: Καλημέρα κόσμε", "ΑΒΓΔ αβγδ ς σ",
              "مرحبا بالعالم", "العربية: كيف حالك؟", "السلام عليكم ورحمة الله", "فارسی: سلام دنیا",
              "שלום עולם", "עברית: מה שלומך?", "Mixed עברית and English", "हिन्दी: नमस्ते दुनिया",
              "संस्कृतम्", "বাংলা: হ্যালো বিশ্ব", "ਪੰਜਾਬੀ", "தமிழ்: வணக்கம்", "తెలుగు", "ಕನ್ನಡ", "മലയാളം",
              "ภาษาไทย: สวัสดีชาวโลก", "ພາສາລາວ", "ភាសាខ្មែរ", "မြန်မာ", "ქართული ენა", "Հայերեն",
              "አማርኛ", "ᐃᓄᒃᑎᑐᑦ", "ᚠᚢᚦᚨᚱᚲ", "𐌰𐌱𐌲 Gothic", "ꦧꦱꦗꦮ",
              "中文：你好，世界！", "我爱北京天安门", "繁體中文測試", "今天天气很好，我们去公园散步吧。",
              "人工智能正在改变世界", "鬱龘齉", "𠀀𠀁𪚥 rare CJK ext", "中文English混合text",
              "日本語：こんにちは世界", "カタカナ ひらがな 漢字", "ｶﾀｶﾅ 半角", "東京都渋谷区",
              "한국어: 안녕하세요 세계", "대한민국 만세", "ㄱㄴㄷ ㅏㅑㅓ", "Монгол: Сайн байна уу",
              "Ελληνικά και English και Русский", "ꯃꯩꯇꯩ", "ᠮᠣᠩᠭᠣᠯ", "བོད་ཡིག", "ދިވެހި"]:
        add(s)
    # --- emoji --------------------------------------------------------------------------------
    for s in ["😀", "😀😃😄", "I ❤️ NY", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇺🇸🇬🇧🇯🇵",
              "🇫🇷 flag", "#️⃣ 1️⃣", "☺ ☺️", "🤖 robot", "emoji😀in😀text", "🧑‍🤝‍🧑", "🫠🫶🪿",
              "✅❌⚠️", "♠♣♥♦", "→←↑↓⇒", "∀x∈ℝ: x²≥0", "∑∫∂√∞", "€£¥₹₿", "©®™", "★☆✓✗",
              "😀 😃 😄 😁 😆", "Text with emoji 🎉🎊 at end 🎈"]:
        add(s)
    # --- special-token text ----------------------------------------------------------------------
    for s in ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
              "<s>", "</s>", "<unk>", "<s>Hello</s>", "Hello <s> world </s> end", " <s> ", "<s><s></s>",
              "<|im_start", "im_start|>", "<|im_", "<|im_start|", "<|endoftext", "< s>", "<s", "s>",
              "</s", "<|im_start|><|im_end|>", "text<|im_end|>text", " <|im_start|> spaced ",
              "<think>\nreasoning\n</think>\n\nanswer", "<tool_call>{\"name\": \"f\"}</tool_call>",
              "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>", "<|vision_start|><|image_pad|><|vision_end|>",
              "<|IM_START|>", "<<|im_end|>>", "<|im_end|>\n<|im_start|>system\nYou are helpful.<|im_end|>",
              "a<s>b", "a </s> b", "<s> <s>", "<|endoftext|><|endoftext|>", "[INST] hi [/INST]",
              "<<SYS>>\nsys\n<</SYS>>", "<|begin_of_text|>", "<pad>", "<mask>", "<|im_start|>\n\n<|im_end|>"]:
        add(s)
    # --- code -----------------------------------------------------------------------------------
    for s in ["def hello_world():\n    print(\"Hello, World!\")\n",
              "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\n",
              "for (int i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}\n",
              "#include <stdio.h>\nint main(void) { return 0; }\n",
              "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{:?}\", v);\n}\n",
              "const f = async (x) => { await fetch(`/api/${x}`); };",
              "SELECT id, name FROM users WHERE age > 21 ORDER BY name DESC;",
              "<div class=\"container\"><p>Hi</p></div>", "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
              "public static void main(String[] args) throws Exception {}", "x := make(map[string]int)",
              "if [ -f ~/.bashrc ]; then source ~/.bashrc; fi", "$ ls -la | grep '^d' | wc -l",
              "    if x:\n        pass\n    else:\n        return None\n", "\t\tindented with tabs\n",
              "// comment\n/* block */\n# python comment\n-- sql comment", "a += 1; b -= 2; c *= 3; d /= 4;",
              "x == y != z <= w >= v && u || !t", "λx. x + 1", "lambda x: x**2", "arr[0][1:3, ::2]",
              "```python\nprint(1)\n```", "| col1 | col2 |\n|------|------|\n| a    | b    |",
              "\\begin{equation} E = mc^2 \\end{equation}", "0xDEADBEEF 0o755 1_000_000",
              "template<typename T> T max(T a, T b);", "@decorator\nclass Foo(Bar):\n    ...",
              "        \n        \n", "}\n\n\n\nfunction", ";;\n;;\n", "a\n\n\n\n\n\nb"]:
        add(s)
    # --- normalization: combining, NFC vs NFD ---------------------------------------------------------
    base = ["café", "Ångström", "Ελληνικά", "한국어", "ệ", "Việt Nam", "ñ", "ü", "Å", "ﬁ ligature", "Ⅳ", "①", "ｶ",
            "ḱ", "ǅ", "ẛ̣", "है", "가각"]
    for b in base:
        add(unicodedata.normalize("NFC", b))
        add(unicodedata.normalize("NFD", b))
        add(unicodedata.normalize("NFKC", b))
    for s in ["e\u0301\u0301", "a\u0308\u0304", "\u0301 leading combining", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
              "\u1100\u1161\u11a8", "\u0915\u094d\u0937", "o\u0338", "\u212b", "\u2126", "\u00c5\u212b", "\u0041\u030a"]:
        add(s)
    # --- long words / repetition -----------------------------------------------------------------------
    for s in ["a" * 300, "ab" * 200, "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
              "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz", "x" * 1000 + " " + "y" * 5,
              " " * 100, "\n" * 50, "-" * 80, "=" * 40 + "\n", "😀" * 40, "中" * 100, "ab" + "\u0301" * 20,
              "the " * 100, "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.",
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "".join(chr(c) for c in range(0x20, 0x7f)),
              "".join(chr(c) for c in range(0xa0, 0x180)), "".join(chr(c) for c in range(0x370, 0x3ff) if unicodedata.category(chr(c)) != "Cn")]:
        add(s)
    # --- chat-like and mixed ------------------------------------------------------------------------
    for s in ["User: What is 2+2?\nAssistant: 2+2 equals 4.", "Q: 你会说中文吗？\nA: 会的！I can speak Chinese too.",
              "Translate 'Hello' into French: « Bonjour »", "Привет! How are you? 元気ですか？",
              "Price: 12.99€ (incl. 19% VAT)", "Temperature: -5°C / 23°F", "Coordinates: 48°51′24″N 2°21′03″E",
              "Smart “quotes” and ‘apostrophes’ — and dashes…", "email@домен.рф", "naïve café — résumé 😀 中文 123",
              "Zürich, München, Köln", "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ", "ｈｅｌｌｏ　ｗｏｒｌｄ", "\ufeffBOM at start",
              "soft\u00adhyphen", "zero\u200dwidth\u200cjoiners", "rtl\u200fmark\u200eltr", "variation\ufe0fselector",
              "tag\U000e0041chars", "private\ue000use", "noncharacter\ufdd0", "replacement \ufffd char",
              "\U0010fffd last plane", "math 𝐀𝐁𝐂 𝔸𝔹ℂ", "music 𝄞 𝄢", "Egyptian 𓀀𓀁", "cuneiform 𒀀"]:
        add(s)
    # --- aimed at the synthetic tokenizers' added tokens and splits ----------------------------------
    for s in ["a [SW] b", "x[SW]y", "[SW]", "([SW])", "é[SW]", " <rs>   z", "<rs>\n\nnext", "a   <mask> b", "x<mask>",
              "Hello World!", "hello world", "HELLO WORLD", "Hello World Hello World", "ß ß", " ß ", "aßb", "Maß ß.",
              "<SEP>", "<sep>", "a<SEP>b", "<Sep> <pad> <PAD>", "think thinking rethink", "3.14 and 42!", "aeiou AEIOU xyz",
              "Question? Answer! Done.", "2024年3月15日", "日本語のテキスト", "  padded  ", "UNKNOWN ✓ ☃ chars ⚡⚡",
              "ＡＢＣ ﬁ ① ㎏", "İstanbul", "ÀÉÎÕÜ àéîõü", "<a\nb>c;d", "deadBEEF cafe 0x1f", "line one\n  line two  \nend",
              "x\u180ey\u00a0z\u2003w", "ABab Ab ſ ß", "a\u0301b\u00b2c\u2167d_e\u200de\u24b6f\u0660g\u00aah"]:
        add(s)
    # --- seeded random strings over many ranges ----------------------------------------------------
    rng = random.Random(20240611)
    ranges = [(0x20, 0x7e), (0x09, 0x0d), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff),
              (0x590, 0x5ff), (0x600, 0x6ff), (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x2000, 0x206f),
              (0x3040, 0x30ff), (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0xff00, 0xffef), (0x1f300, 0x1faff),
              (0x1d400, 0x1d7ff), (0x20000, 0x2a6df)]
    for i in range(90):
        n = rng.randint(1, 40)
        chars = []
        for _ in range(n):
            lo, hi = rng.choice(ranges)
            ch = chr(rng.randint(lo, hi))
            if 0xd800 <= ord(ch) <= 0xdfff:
                continue
            chars.append(ch)
            if rng.random() < 0.15:
                chars.append(" " * rng.randint(1, 3))
        add("".join(chars))
    seen = set()
    out = []
    for s in c:
        if s not in seen and "\x00" not in s:
            seen.add(s)
            out.append(s)
    return out


def build_synthetic(corpus):
    """Trains the SYNTH tokenizers (deterministic: HF's BPE trainer is) and saves their
    tokenizer.json under tests/data/tokenizers/<name>/."""
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders as dc, models, normalizers as nm,
                            pre_tokenizers as pt, processors as pp, trainers)

    def train(tok, **kw):
        kw.setdefault("show_progress", False)
        tok.train_from_iterator(corpus * 3, trainer=trainers.BpeTrainer(**kw))
        return tok

    def with_byte_tokens(tok):
        j = json.loads(tok.to_str())
        vocab = j["model"]["vocab"]
        nxt = max(vocab.values()) + 1
        for b in range(256):
            if "<0x%02X>" % b not in vocab:
                vocab["<0x%02X>" % b] = nxt
                nxt += 1
        return Tokenizer.from_str(json.dumps(j))

    out = {}
    # GPT-2 style byte level with regex and prefix space; added tokens with every flag.
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pt.ByteLevel(add_prefix_space=True, use_regex=True)
    t.decoder = dc.ByteLevel()
    train(t, vocab_size=1500, initial_alphabet=pt.ByteLevel.alphabet(), special_tokens=["<|bos|>", "<|eos|>"])
    t.post_processor = pp.TemplateProcessing(
        single="<|bos|> $A <|eos|>",
        special_tokens=[("<|bos|>", t.token_to_id("<|bos|>")), ("<|eos|>", t.token_to_id("<|eos|>"))])
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True), AddedToken("<rs>", rstrip=True, special=True)])
    t.add_tokens([AddedToken("[SW]", single_word=True), AddedToken("Hello World", normalized=True),
                  AddedToken("ß", single_word=True, lstrip=True, rstrip=True), AddedToken("think", special=False)])
    out["synth_bytelevel"] = t
    # SentencePiece-like with a Metaspace pre-tokenizer, digits split, unk fusing, lowercasing.
    t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    t.normalizer = nm.Sequence([nm.NFKC(), nm.Lowercase()])
    t.pre_tokenizer = pt.Sequence([pt.Metaspace(replacement="\u2581", prepend_scheme="first", split=True),
                                   pt.Digits(individual_digits=True)])
    t.decoder = dc.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    train(t, vocab_size=1200, limit_alphabet=120, special_tokens=["<unk>"])
    t.add_special_tokens([AddedToken("<SEP>", normalized=True, special=True)])
    t.add_tokens([AddedToken("<pad>", normalized=False, special=False)])
    out["synth_metaspace"] = t
    # Word-level splitting with subword prefix and word suffix; accents stripped.
    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    t.normalizer = nm.Sequence([nm.NFD(), nm.StripAccents(), nm.Strip()])
    t.pre_tokenizer = pt.WhitespaceSplit()
    t.decoder = dc.BPEDecoder(suffix="</w>")
    train(t, vocab_size=1500, limit_alphabet=200, special_tokens=["[UNK]", "<s>", "</s>"],
          continuing_subword_prefix="##", end_of_word_suffix="</w>")
    t.post_processor = pp.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>")))
    out["synth_suffix"] = t
    # Split behaviours, regex normalizers, byte fallback with ignore_merges, strip decoder.
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, ignore_merges=True))
    t.normalizer = nm.Sequence([nm.Replace(Regex("\\s+"), " "), nm.Prepend("\u2581"), nm.Replace(" ", "\u2581")])
    t.pre_tokenizer = pt.Sequence([
        pt.Split(Regex("\\d+"), "merged_with_previous"),
        pt.Split("\u2581", "merged_with_next"),
        pt.Split(Regex("[.,!?;:]"), "removed"),
        pt.Split(Regex("[aeiouAEIOU]+"), "contiguous", invert=True),
        pt.Split(Regex("\\p{Han}|\\p{Hiragana}|\\s"), "isolated"),
    ])
    t.decoder = dc.Sequence([dc.Replace("\u2581", " "), dc.ByteFallback(), dc.Fuse(), dc.Strip(" ", 1, 1)])
    train(t, vocab_size=1000, limit_alphabet=150, special_tokens=["<unk>", "[CLS]", "[SEP]"])
    t = with_byte_tokens(t)
    t.post_processor = pp.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", t.token_to_id("[CLS]")), ("[SEP]", t.token_to_id("[SEP]"))])
    out["synth_split"] = t
    # A ByteLevel normalizer, no pre-tokenizer, no decoder (decode joins tokens with spaces).
    t = Tokenizer(models.BPE())
    t.normalizer = nm.ByteLevel()
    train(t, vocab_size=700, initial_alphabet=pt.ByteLevel.alphabet(), special_tokens=["<|end|>"])
    out["synth_nodecoder"] = t
    # Oniguruma regex syntax whose meaning differs from PCRE2's (\\w, \\s, \\h, (?m), ^/$ per
    # line), contiguous digits; the regexes see the text itself, ByteLevel maps it last.
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pt.Sequence([
        pt.Split(Regex("(?m)<[^>]*?>.*?;"), "isolated"),
        pt.Split(Regex("^\\s+|\\s+$"), "isolated"),
        pt.Split(Regex("\\h{2,}"), "isolated"),
        pt.Split(Regex("\\w+|[^\\w\\s]+|\\s+"), "isolated"),
        pt.Split(Regex("(?i:ab|ſ)"), "merged_with_next"),
        pt.Digits(individual_digits=False),
        pt.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    t.decoder = dc.ByteLevel()
    train(t, vocab_size=900, initial_alphabet=pt.ByteLevel.alphabet())
    out["synth_regex"] = t
    for name, tok in out.items():
        os.makedirs(os.path.join(DATA, name), exist_ok=True)
        tok.save(os.path.join(DATA, name, "tokenizer.json"))
    return out


def hf_decode(tok, ids, skip):
    """HF's decode, or None where it panics (Strip with stop>0 on an empty text indexes out of
    bounds in Rust); the test skips those."""
    try:
        return tok.decode(ids, skip_special_tokens=skip)
    except BaseException as e:  # pyo3's PanicException is not an Exception
        if type(e).__name__ != "PanicException":
            raise
        return None


def decode_cases(tok, name, rng):
    """Id sequences whose decode pins edge cases: single bytes of multi-byte characters, byte
    tokens split mid-character, special tokens in the middle."""
    vocab = tok.get_vocab()
    cases = []
    ids_of = lambda s: tok.encode(s, add_special_tokens=False).ids
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    byte_tok = None
    if name == "qwen3":
        # Byte-level: tokens for single bytes are the GPT-2 byte characters.
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        byte_tok = {b: vocab[chr(c)] for b, c in zip(bs, cs)}
    elif "<0x41>" in vocab:
        byte_tok = {b: vocab["<0x%02X>" % b] for b in range(256)}
    seqs = []
    for text in ["中文", "😀👍🏽", "é", "👨‍👩‍👧"] if byte_tok else []:
        raw = text.encode("utf-8")
        seqs.append([byte_tok[b] for b in raw])
        seqs.append([byte_tok[b] for b in raw[:-1]])          # truncated final character
        seqs.append([byte_tok[b] for b in raw[1:]])           # stray continuation bytes
        seqs.append(ids_of("a") + [byte_tok[b] for b in raw[:-1]] + ids_of(" b"))
    if byte_tok:
        seqs.append([byte_tok[0xFF], byte_tok[0xC0], byte_tok[0x80]])
        seqs.append([byte_tok[0xE4], byte_tok[0xB8], byte_tok[0x41], byte_tok[0xAD]])
        seqs.append([byte_tok[0xF0], byte_tok[0x9F], byte_tok[0x98]] + ids_of(" ok"))
        seqs.append([byte_tok[0xED], byte_tok[0xA0], byte_tok[0x80]])  # encoded surrogate
        seqs.append([byte_tok[0xE0], byte_tok[0x80], byte_tok[0x80]])  # overlong
    for sp in specials[:3]:
        sid = vocab.get(sp, tok.token_to_id(sp))
        seqs.append(ids_of("Hello") + [sid] + ids_of(" world") + [sid])
        if byte_tok:
            seqs.append([sid] + [byte_tok[0xE4]] + [sid])
    seqs.append(ids_of(" leading space"))
    seqs.append(ids_of("  two leading spaces"))
    seqs.append([])
    vs = tok.get_vocab_size(with_added_tokens=True)
    for _ in range(40):
        seqs.append([rng.randrange(vs) for _ in range(rng.randint(1, 12))])
    for ids in seqs:
        cases.append({"ids": ids, "text": hf_decode(tok, ids, False), "text_skip": hf_decode(tok, ids, True)})
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", action="store_true", help="rebuild corpus.json first")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import tokenizers
    from tokenizers import Tokenizer

    corpus_path = os.path.join(DATA, "corpus.json")
    if args.corpus or not os.path.exists(corpus_path):
        corpus = build_corpus()
        with open(corpus_path, "w", encoding="utf-8") as f:
            json.dump(corpus, f, ensure_ascii=False, indent=0)
            f.write("\n")
        print(f"wrote {corpus_path}: {len(corpus)} strings")
    with open(corpus_path, encoding="utf-8") as f:
        corpus = json.load(f)

    if args.corpus or not all(os.path.exists(os.path.join(DATA, n, "tokenizer.json")) for n in SYNTH):
        build_synthetic(corpus)
        print("trained " + ", ".join(SYNTH))

    for name in NAMES + SYNTH:
        tok = Tokenizer.from_file(os.path.join(DATA, name, "tokenizer.json"))
        split_tok = Tokenizer.from_file(os.path.join(DATA, name, "tokenizer.json"))
        split_tok.encode_special_tokens = True
        cases = []
        for text in corpus:
            ids = tok.encode(text, add_special_tokens=False).ids
            ids_sp = tok.encode(text, add_special_tokens=True).ids
            ids_split = split_tok.encode(text, add_special_tokens=False).ids
            cases.append({
                "text": text,
                "ids": ids,
                "ids_special": ids_sp,
                "ids_split_special": ids_split,
                "decoded": hf_decode(tok, ids_sp, False),
                "decoded_skip": hf_decode(tok, ids_sp, True),
            })
        ref = {
            "tokenizer": name,
            "generator": "tools/make_tokenizer_reference.py",
            "tokenizers_version": tokenizers.__version__,
            "cases": cases,
            "decode_cases": decode_cases(tok, name, random.Random(7)),
        }
        out = os.path.join(DATA, f"{name}_reference.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(ref, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {out}: {len(cases)} strings, {len(ref['decode_cases'])} decode cases")


if __name__ == "__main__":
    sys.exit(main())
