// Token-id parity with Hugging Face's own tokenizer library (the npm package `tokenizers`):
// a byte-level BPE vocabulary trained by shrink on the KJV text, written in the tokenizer.json
// forms GPT-2, Llama 3 and Qwen 2 use, must give the same ids in shrink and in the library
// for the whole KJV text and for hand-picked Unicode, and both must decode the ids back
// to the text.
//
//   node tokenizer_parity.js SHRINK TOKENIZER_JSON KJV_TEXT WORK_DIR
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Tokenizer } = require('tokenizers');

const [shrink, base, kjvFile, work] = process.argv.slice(2);
const trained = JSON.parse(fs.readFileSync(base, 'utf8'));

// The split patterns exactly as the published tokenizer.json files give them.
const llama3Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const qwen2Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function variant(name, change) {
  const t = JSON.parse(JSON.stringify(trained));
  change(t);
  const file = path.join(work, name + '.json');
  fs.writeFileSync(file, JSON.stringify(t));
  return file;
}
const byteLevel = (prefix, regex) => ({ type: 'ByteLevel', add_prefix_space: prefix, trim_offsets: true, use_regex: regex });
const split = (pattern) => ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });
const nextId = trained.added_tokens.reduce((m, t) => Math.max(m, t.id), 0) + 1;
const moreAdded = [
  { id: nextId, content: '<|begin_of_text|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  { id: nextId + 1, content: '<|eot|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  { id: nextId + 2, content: 'LORD God', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
];

const variants = {
  // GPT-2: ByteLevel splits with its own pattern; merges as pairs (as shrink writes them).
  gpt2: variant('gpt2', () => {}),
  'gpt2-prefix-space': variant('gpt2-prefix-space', (t) => { t.pre_tokenizer = byteLevel(true, true); }),
  // Llama 3: a Split with its pattern, ByteLevel without one, ignore_merges, "a b" merges.
  llama3: variant('llama3', (t) => {
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [split(llama3Pattern), byteLevel(false, false)] };
    t.model.ignore_merges = true;
    t.model.merges = t.model.merges.map((m) => m.join(' '));
    t.added_tokens = t.added_tokens.concat(moreAdded);
  }),
  // Qwen 2: NFC first, then its pattern (single digits).
  qwen2: variant('qwen2', (t) => {
    t.normalizer = { type: 'NFC' };
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [split(qwen2Pattern), byteLevel(false, false)] };
    t.added_tokens = t.added_tokens.concat(moreAdded);
  }),
};

const tricky = [
  'Hello, World! HELLO world... I\'M here; we\'LL see, they\'D\'ve gone.',
  'digits 1 12 123 1234 1234567 3.14159 -42 ١٢٣ ⅷ',
  'spaces:  two,   three,\ttab,\u00a0nbsp,\u2003em,\u000bvt,\u0085nel,\u3000ideographic   \n\n\r\n  trailing   ',
  'combining: e\u0301 \u00e9 A\u030a \u212b ﬁ ① ｆｕｌｌ',
  'scripts: 日本語のテキスト 中文 한국어 Ελληνικά русский العربية עברית हिन्दी',
  'emoji: 😀👍🏽 👨‍👩‍👧 🇫🇷 ✈️',
  'specials: <|endoftext|>x<|begin_of_text|>y<|eot|><|endof <|endoftext|',
  'added: the LORD God said, LORD Gods, LORD  God',
  'punctuation: «quoted» “curly” — em-dash… ¿qué? ¡sí! (a)[b]{c} @#$%^&*_+=~`|\\/',
  '',
  ' ',
  '\n',
].join('\n');

// What decoding gives for variants that change the text (no added tokens in the KJV text;
// in the Unicode text the stretches between added tokens each get their space).
const changes = {
  qwen2: (t) => t.normalize('NFC'),
  'gpt2-prefix-space': (t) => t.split(/(<\|endoftext\|>)/).map((p, i) => (i % 2 || p === '' || p.startsWith(' ') ? p : ' ' + p)).join(''),
};

let failures = 0;
const kjv = fs.readFileSync(kjvFile, 'utf8');
async function check(name, file, label, text) {
  const textFile = path.join(work, `${name}-${label}.txt`);
  fs.writeFileSync(textFile, text);
  const out = execFileSync(shrink, ['tokenize', file, '--file', textFile], { maxBuffer: 1 << 30 }).toString().trim();
  const ours = out === '' ? [] : out.split(' ').map(Number);
  const tok = Tokenizer.fromFile(file);
  const theirs = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
  let first = -1;
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) if (ours[i] !== theirs[i]) { first = i; break; }
  if (first >= 0) {
    failures++;
    console.log(`${name}/${label}: ids differ at token ${first} of ${theirs.length}: shrink ${JSON.stringify(ours.slice(first, first + 8))}, ` +
                `tokenizers ${JSON.stringify(theirs.slice(first, first + 8))}`);
    return;
  }
  // Decoding gives the text back, except what the tokenizer changes on the way: NFC, and
  // the space ByteLevel puts in front of each stretch with add_prefix_space.
  const idsFile = path.join(work, `${name}-${label}.ids`);
  fs.writeFileSync(idsFile, out);
  const ourText = execFileSync(shrink, ['tokenize', file, '--decode', '--file', idsFile], { maxBuffer: 1 << 30 }).toString();
  const theirText = await tok.decode(theirs, false);
  const expected = changes[name] ? changes[name](text) : text;
  if (ourText !== theirText || theirText !== expected) {
    failures++;
    console.log(`${name}/${label}: decoding differs (shrink equals tokenizers: ${ourText === theirText}, ` +
                `tokenizers gives the expected text: ${theirText === expected})`);
    return;
  }
  console.log(`${name}/${label}: ${theirs.length} tokens equal, both decode to the ${changes[name] ? 'changed' : 'same'} text`);
}

(async () => {
  for (const [name, file] of Object.entries(variants)) {
    await check(name, file, 'kjv', kjv);
    await check(name, file, 'unicode', tricky);
  }
  if (failures) {
    console.log(`${failures} comparisons failed`);
    process.exit(1);
  }
})();
