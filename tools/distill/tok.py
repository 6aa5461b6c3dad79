"""Tokenizer: SentencePiece (BPE, byte fallback) learns the vocabulary; encoding is done here with
llama.cpp's SPM algorithm (the one Lightboat implements), so the ids the model is trained on are
exactly the ids the engine produces from the same text.

Vocabulary layout: <unk> 0, <s> 1, </s> 2, <|im_start|> 3, <|im_end|> 4 (control), the 256 byte
tokens <0x00>..<0xFF>, then the learned pieces. Newlines are not in the learned pieces
(SentencePiece reads one sentence per line), so "\n" encodes as <0x0A>.
"""
import json
import sentencepiece as spm

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPACE = "\u2581"
# The chat template written into the GGUF (ChatML); `chat_text` below renders the same text.
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def train(sentences_path, prefix, vocab_size, seed_sentences=None):
    spm.SentencePieceTrainer.train(
        input=sentences_path, model_prefix=prefix, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, control_symbols=[IM_START, IM_END], normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
        character_coverage=1.0, num_threads=1, minloglevel=2, bos_id=1, eos_id=2, unk_id=0,
        max_sentencepiece_length=12)


# GGUF token types (llama.cpp's): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
def vocab_of(model_path):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    pieces, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        pieces.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_byte(i):
            t = 6
        elif sp.is_unused(i):
            t = 5
        else:
            t = 1
        types.append(t)
    return pieces, scores, types


class Encoder:
    """llama.cpp's SPM tokenization over (pieces, scores, types): bigram merges by highest score
    (leftmost first), unknown characters as UTF-8 byte tokens; a space prefix before every text
    run that starts the input or follows a special token."""

    def __init__(self, pieces, scores, types):
        self.pieces, self.scores, self.types = pieces, scores, types
        self.ids = {p: i for i, p in enumerate(pieces) if types[i] in (1, 4)}
        self.byte = {int(p[3:5], 16): i for i, p in enumerate(pieces) if types[i] == 6}
        self.special = {p: i for i, p in enumerate(pieces) if types[i] == 3}
        self.bos, self.eos = 1, self.special[IM_END]
        self.cache = {}
        for p in self.ids:
            assert SPACE not in p[1:], "piece with an inner space: %r" % p

    def _chunk(self, s):
        out = self.cache.get(s)
        if out is not None:
            return out
        sym = list(s)
        while True:
            best, at = None, -1
            for i in range(len(sym) - 1):
                j = self.ids.get(sym[i] + sym[i + 1])
                if j is not None and (best is None or self.scores[j] > best):
                    best, at = self.scores[j], i
            if at < 0:
                break
            sym[at:at + 2] = [sym[at] + sym[at + 1]]
        out = []
        for x in sym:
            j = self.ids.get(x)
            if j is not None:
                out.append(j)
            else:
                out.extend(self.byte[b] for b in x.encode("utf-8"))
        self.cache[s] = out
        return out

    def text(self, t):
        """A text run (after a special token or at the start): space prefix, spaces -> U+2581."""
        s = (" " + t).replace(" ", SPACE)
        out, start = [], 0
        # No piece holds U+2581 except first, so chunks starting at each U+2581 encode alone.
        for k in range(1, len(s) + 1):
            if k == len(s) or s[k] == SPACE:
                out.extend(self._chunk(s[start:k]))
                start = k
        return out

    def encode(self, text, add_bos=True):
        """Text with <|im_start|>/<|im_end|> parsed as special tokens."""
        out = [self.bos] if add_bos else []
        i = 0
        while i < len(text):
            hits = [(text.find(sp, i), sp) for sp in (IM_START, IM_END)]
            hits = [(p, sp) for p, sp in hits if p >= 0]
            if not hits:
                out.extend(self.text(text[i:]))
                break
            p, sp = min(hits)
            if p > i:
                out.extend(self.text(text[i:p]))
            out.append(self.special[sp])
            i = p + len(sp)
        return out

    def decode(self, ids):
        bs = b""
        for i in ids:
            t = self.types[i]
            if t == 6:
                bs += bytes([int(self.pieces[i][3:5], 16)])
            elif t in (1, 4):
                bs += self.pieces[i].replace(SPACE, " ").encode("utf-8")
        return bs.decode("utf-8", errors="replace")


def prompt_text(user):
    return IM_START + "user\n" + user + IM_END + "\n" + IM_START + "assistant\n"


def example_ids(enc, ex):
    """(ids, n_prompt): BOS + chat prompt, then the answer and <|im_end|>. The answer continues
    the prompt's last text run ("assistant\\n"); no piece holds a newline, so the prompt's ids
    are a prefix of the whole example's ids (checked)."""
    full = enc.encode(prompt_text(ex["prompt"]) + ex["answer"] + IM_END)
    prompt = enc.encode(prompt_text(ex["prompt"]))
    assert full[:len(prompt)] == prompt, ex["prompt"]
    return full, len(prompt)


def save_vocab(path, pieces, scores, types):
    with open(path, "w") as f:
        json.dump({"pieces": pieces, "scores": scores, "types": types}, f)
