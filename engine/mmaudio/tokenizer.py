"""CLIP's byte-level BPE tokenizer as MMAudio runs it (open_clip's SimpleTokenizer, ViT-H-14): prompts -> ids [B, 77].

MMAudio takes `open_clip.get_tokenizer('ViT-H-14-378-quickgelu')`, which is SimpleTokenizer over OpenAI CLIP's
merges file (`bpe_simple_vocab_16e6.txt.gz`, MIT; open_clip ships it, and so do we, beside this module): text cleaned
(ftfy, HTML entities, whitespace, lower case), split by CLIP's pattern, each piece byte-encoded and merged by BPE
(Sennrich et al. 2016), framed by start and end ids, truncated to 77 (the last id kept an end id) and padded with 0.
"""

import gzip
import html
import itertools
import logging
from pathlib import Path

import regex
import torch

try:
    import ftfy
except ModuleNotFoundError:  # only prompts that ftfy would change need it; see `clean_text`
    ftfy = None

logger = logging.getLogger(__name__)

VOCAB_FILE = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"  # OpenAI CLIP's and open_clip's file
CONTEXT_LENGTH = 77
MERGES = 49408 - 2 * 256 - 2  # CLIP's ids: 256 bytes, the same ending a word ('</w>'), 48894 merges, 2 specials
START, END = "<start_of_text>", "<end_of_text>"
PATTERN = regex.compile(
    rf"{START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|\p{{L}}+|\p{{N}}|[^\s\p{{L}}\p{{N}}]+", regex.IGNORECASE
)

# Characters ftfy.fix_text leaves as they are (up to whitespace, which the cleaning collapses anyway): printable
# ASCII but '&' (HTML entities) and tab, newline, carriage return, form feed (ftfy drops a vertical tab).
FTFY_NEUTRAL = frozenset(chr(code) for code in range(0x20, 0x7F) if chr(code) != "&") | frozenset("\t\n\r\f")


def byte_table() -> dict[int, str]:
    """GPT-2's reversible byte -> character table: printable Latin-1 bytes stand for themselves, the rest (controls,
    space, no-break space, soft hyphen) for chr(256 + n) in byte order. Its order is the vocabulary's order."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    moved = [byte for byte in range(256) if byte not in kept]
    return {**{byte: chr(byte) for byte in kept}, **{byte: chr(256 + n) for n, byte in enumerate(moved)}}


def clean_text(text: str) -> str:
    """open_clip's 'lower' cleaning: ftfy.fix_text, HTML entities unescaped twice, whitespace runs -> one space,
    lower case. Without ftfy installed, only text ftfy would leave unchanged is accepted."""
    if ftfy is not None:
        text = ftfy.fix_text(text)
    elif not FTFY_NEUTRAL.issuperset(text):
        raise ModuleNotFoundError(
            f"The prompt {text!r} has characters that MMAudio's tokenizer cleans with ftfy (typographic quotes, "
            "accents, full-width forms, HTML entities...); install ftfy (`pip install ftfy`) to tokenize it exactly.",
            name="ftfy")
    text = html.unescape(html.unescape(text))
    return " ".join(text.split()).lower()


def merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """Join every non-overlapping occurrence of `pair`, scanning left to right."""
    merged, index = [], 0
    while index < len(symbols):
        if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == pair:
            merged.append(symbols[index] + symbols[index + 1])
            index += 2
        else:
            merged.append(symbols[index])
            index += 1
    return merged


def bpe(piece: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one byte-encoded piece: its characters, the last marked '</w>', merged pair by pair,
    the pair learnt first (lowest rank) first, until no adjacent pair is a merge."""
    symbols = [*piece[:-1], piece[-1] + "</w>"]
    while len(symbols) > 1:
        ranked = [(ranks[pair], pair) for pair in itertools.pairwise(symbols) if pair in ranks]
        if not ranked:
            break
        symbols = merge_pair(symbols, min(ranked)[1])
    return symbols


class ClipTokenizer:
    """CLIP's BPE over a list of merges; `tokenizer(prompts)` gives the ids open_clip's SimpleTokenizer gives."""

    def __init__(self, merges: list[tuple[str, str]], context_length: int = CONTEXT_LENGTH):
        self.bytes = byte_table()
        symbols = list(self.bytes.values())
        vocabulary = [*symbols, *(symbol + "</w>" for symbol in symbols), *("".join(m) for m in merges), START, END]
        self.ids = {token: index for index, token in enumerate(vocabulary)}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.start_id, self.end_id = self.ids[START], self.ids[END]
        self.context_length = context_length
        self.cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.ids)

    def encode_piece(self, piece: str) -> list[int]:
        """Ids of one piece of the split text (a special token's literal name is that special token)."""
        if piece in (START, END):
            return [self.ids[piece]]
        if piece not in self.cache:
            encoded = "".join(self.bytes[byte] for byte in piece.encode("utf-8"))
            self.cache[piece] = [self.ids[symbol] for symbol in bpe(encoded, self.ranks)]
        return self.cache[piece]

    def encode(self, text: str) -> list[int]:
        """Ids of a prompt's text, without the start and end ids."""
        return [index for piece in PATTERN.findall(clean_text(text)) for index in self.encode_piece(piece)]

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> ids [B, context_length]: start, text, end; cut to the context with the end id kept last;
        zero padded."""
        if isinstance(prompts, str):
            raise TypeError(f"prompts is the string {prompts!r}; pass a list of prompts, e.g. [{prompts!r}].")
        ids = torch.zeros(len(prompts), self.context_length, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            framed = [self.start_id, *self.encode(prompt)][: self.context_length - 1] + [self.end_id]
            ids[row, : len(framed)] = torch.tensor(framed)
        return ids


def read_merges(path: Path) -> list[tuple[str, str]]:
    """The merges CLIP uses from a `bpe_simple_vocab_16e6.txt.gz` file: lines 2 to 48895 (the first is a header)."""
    with gzip.open(path) as file:
        lines = file.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGES + 1]]
    if len(merges) != MERGES or any(len(merge) != 2 for merge in merges):
        raise ValueError(f"{path} is not CLIP's BPE merges file: expected {MERGES} merges of two symbols after the "
                         f"header line (bpe_simple_vocab_16e6.txt.gz, sha256 {VOCAB_SHA256}).")
    return merges


def load_tokenizer(path: Path = VOCAB_FILE) -> ClipTokenizer:
    """The tokenizer MMAudio uses, from the merges file shipped beside this module (or an identical copy, such as
    the one inside the open_clip package)."""
    return ClipTokenizer(read_merges(path))
