//! Key phrases, named entities and a readable context sentence, found in a text without a
//! language model.
//!
//! Ingest labels every memory: tags when the caller gave none, a context line, and links to the
//! memories that mention the same people, places or identifiers. Without a language model these
//! come from here, by light heuristics that need no dictionary or model:
//!
//! * **names**: runs of capitalised words ("Berlin", "New York", "Bank of America") and
//!   acronyms ("LGBTQ"). A capitalised word that opens a sentence (or a line) is a name only
//!   when it is also capitalised elsewhere, opens a run of names, is followed by a verb in the
//!   past ("Anna visited", "Tom said") or introduces a speaker ("Caroline (…)");
//! * **identifiers**: `snake_case`, `CamelCase`, `a::path`, `file.rs`, words with digits;
//! * **dates and quantities**: "March 2024", "8 May 2023", "May 8, 2023", "2024", "3 cups";
//! * **noun phrases**: runs of words between stop words, verbs and punctuation ("bike startup",
//!   "cargo e-bikes"), at most three words (the last three of a longer run: English puts the
//!   head noun last).
//!
//! Only the first [`SCAN_BYTES`] of a text are read, so a 60 KB memory costs what a 4 KB one
//! does, and everything is linear in what is read. Letters of any script work; the word lists
//! (stop words, verbs, months) are English.
//!
//! ```
//! use membrain_memory::phrases::{context_sentence, key_phrases};
//! let text = "I moved from Berlin to Lisbon in March 2024 for a job at a bike startup";
//! let phrases = key_phrases(text, 5);
//! assert_eq!(phrases[..3], ["berlin", "lisbon", "bike startup"]);
//! assert_eq!(
//!     context_sentence("general", text, &phrases),
//!     "A general memory about Berlin, Lisbon and a bike startup (March 2024)."
//! );
//! ```

use std::collections::{HashMap, HashSet};

use crate::text::{MAX_KEYWORD_BYTES, is_stop_word};

/// Bytes of a text read for phrases and entities (cut back to a character boundary). A memory's
/// subject is nearly always in its first paragraphs; reading 64 KB would cost each ingest 16
/// times as much for tags nobody asked for. Measured (release build, a busy 2-core machine):
/// one analysis of a 4 KB scan takes about 0.25 ms, of a one-line memory about 5 µs; ingest
/// makes a few per memory (tags, context, subjects) and two per link it describes.
pub const SCAN_BYTES: usize = 4096;
/// Longest context sentence, in characters.
pub const MAX_CONTEXT_CHARS: usize = 200;
/// Most named entities kept per text: the lexical query built from them stays short.
const MAX_ENTITIES: usize = 16;
/// Most words of a noun phrase.
const MAX_PHRASE_WORDS: usize = 3;
/// Most words of a name ("Bank of America", "Jean Claude Van Damme").
const MAX_NAME_WORDS: usize = 4;
/// Most phrases named in a context sentence (a date comes on top, in brackets).
const CONTEXT_ITEMS: usize = 3;

/// Up to `max` key phrases of `text`, lower-cased (as tags are), best first: names,
/// identifiers and multi-word phrases before dates and single words, then the more frequent,
/// then the earlier. A phrase inside a longer chosen one ("lgbtq" in "lgbtq support group") is
/// left out. Each is at most [`MAX_KEYWORD_BYTES`] long.
pub fn key_phrases(text: &str, max: usize) -> Vec<String> {
    let analysis = Analysis::of(text);
    choose(analysis.candidates.iter(), max)
        .into_iter()
        .map(|c| c.tag.clone())
        .collect()
}

/// The proper names, identifiers and distinctive numbers (three digits or more, not part of a
/// date or time) of `text`, lower-cased, in order of appearance, at most 16: what a memory can
/// be linked by to another that mentions the same thing.
pub fn named_entities(text: &str) -> Vec<String> {
    Analysis::of(text)
        .entities
        .into_iter()
        .map(|e| e.key)
        .collect()
}

/// What a memory can be linked by to others: its [`named_entities`] (but the speaker of a chat
/// turn, "Caroline (1:56 pm …): …", who is in every turn of hers), then its multi-word phrases
/// ("bike startup"), lower-cased, at most 16 in all.
pub fn link_subjects(text: &str) -> Vec<String> {
    let analysis = Analysis::of(text);
    let mut subjects: Vec<String> = analysis.subjects().map(|e| e.key.clone()).collect();
    let phrases = analysis
        .candidates
        .iter()
        .filter(|c| c.kind == Kind::Phrase);
    for phrase in choose(phrases, MAX_ENTITIES) {
        if subjects.len() >= MAX_ENTITIES {
            break;
        }
        if !subjects.contains(&phrase.tag) {
            subjects.push(phrase.tag.clone());
        }
    }
    subjects
}

/// What `first` and `second` both mention, as a description names it, up to `max`: the named
/// entities of `first` that `second` has too, or writes alike as a whole word ("Lisbon" opening
/// a sentence is no sure name on its own, but it is the same word), as `first` writes them;
/// then the multi-word phrases both have, with an article ("the bike startup"). Not the speaker
/// of a chat turn (see [`link_subjects`]). One inside a
/// longer shared one is left out. Dates, quantities and single common words do not count: they
/// say little about why two memories belong together.
pub fn shared_subjects(first: &str, second: &str, max: usize) -> Vec<String> {
    let ours = Analysis::of(first);
    if ours.subjects().next().is_none() && !ours.candidates.iter().any(|c| c.kind == Kind::Phrase) {
        return Vec::new();
    }
    let theirs = Analysis::of(second);
    let their_entities: HashSet<&str> = theirs.entities.iter().map(|e| e.key.as_str()).collect();
    let their_tags: HashSet<&str> = theirs.candidates.iter().map(|c| c.tag.as_str()).collect();
    let second = scanned(second);
    // (lower-cased, as shown)
    let mut shared: Vec<(&str, String)> = Vec::new();
    for entity in ours.subjects() {
        if their_entities.contains(entity.key.as_str()) || contains_word(second, &entity.written) {
            shared.push((&entity.key, entity.written.clone()));
        }
    }
    let phrases = ours
        .candidates
        .iter()
        .filter(|c| c.kind == Kind::Phrase && their_tags.contains(c.tag.as_str()));
    for phrase in choose(phrases, max) {
        let shown = if phrase.named {
            phrase.written.clone()
        } else {
            format!("the {}", phrase.written)
        };
        shared.push((&phrase.tag, shown));
    }
    let kept: Vec<String> = shared
        .iter()
        .filter(|(tag, _)| !shared.iter().any(|(other, _)| contains_words(other, tag)))
        .map(|(_, shown)| shown.clone())
        .take(max)
        .collect();
    kept
}

/// One sentence that situates a memory: its category and up to three of `phrases` (as
/// [`key_phrases`] returns them) as `content` writes them (names keep their capitals, a noun
/// phrase its article), the first date in brackets; "and" before the last item; at most
/// [`MAX_CONTEXT_CHARS`] characters.
///
/// "A general memory about Berlin, Lisbon and a bike startup (March 2024)."
pub fn context_sentence(category: &str, content: &str, phrases: &[String]) -> String {
    let analysis = Analysis::of(content);
    let mut items: Vec<String> = Vec::new();
    let mut date = None;
    for phrase in phrases {
        match analysis.candidates.iter().find(|c| c.tag == *phrase) {
            Some(c) if c.kind == Kind::Date => {
                date.get_or_insert_with(|| c.written.clone());
            }
            Some(c) if items.len() < CONTEXT_ITEMS => items.push(c.shown()),
            None if items.len() < CONTEXT_ITEMS && !phrase.trim().is_empty() => {
                items.push(phrase.trim().to_owned())
            }
            _ => {}
        }
    }
    let category = category.trim();
    let opening = if category.is_empty() {
        "A memory".to_owned()
    } else {
        let article = if category
            .chars()
            .next()
            .is_some_and(|c| "aeiouAEIOU".contains(c))
        {
            "An"
        } else {
            "A"
        };
        format!("{article} {category} memory")
    };
    // The most items that fit, with the date if it fits too.
    for shown in (1..=items.len()).rev() {
        let about = format!("{opening} about {}", and_list(&items[..shown]));
        if let Some(date) = &date {
            let sentence = format!("{about} ({date}).");
            if sentence.chars().count() <= MAX_CONTEXT_CHARS {
                return sentence;
            }
        }
        let sentence = format!("{about}.");
        if sentence.chars().count() <= MAX_CONTEXT_CHARS {
            return sentence;
        }
    }
    if let Some(date) = &date {
        let sentence = format!("{opening} from {date}.");
        if sentence.chars().count() <= MAX_CONTEXT_CHARS {
            return sentence;
        }
    }
    let sentence = format!("{opening}.");
    match sentence.char_indices().nth(MAX_CONTEXT_CHARS - 1) {
        Some((at, _)) => format!("{}.", &sentence[..at]),
        None => sentence,
    }
}

/// Key phrases looked at for a context sentence: enough that three items and a date remain
/// after dates and repeats are set apart.
pub const CONTEXT_PHRASES: usize = 6;

/// The context sentence of `content` from its own key phrases: what ingest writes without a
/// language model, and what a merge writes for the new wording.
pub fn plain_context(category: &str, content: &str) -> String {
    context_sentence(category, content, &key_phrases(content, CONTEXT_PHRASES))
}

/// "a", "a and b", "a, b and c".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [first @ .., last] => format!("{} and {last}", first.join(", ")),
    }
}

/// What a candidate phrase is; the order of [`Kind::weight`] ranks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Name,
    Identifier,
    Phrase,
    Date,
    Quantity,
    Word,
}

#[derive(Debug, Clone)]
struct Candidate {
    /// As the text writes it (a sentence's capital dropped unless it is a name).
    written: String,
    /// Lower-cased: the tag, and the key phrases are compared by.
    tag: String,
    kind: Kind,
    /// A phrase led by a name ("LGBTQ support group") ranks as a name.
    named: bool,
    /// The article or possessive ("a", "the", "my") before its first occurrence.
    article: Option<&'static str>,
    count: usize,
    /// Index of the first word of its first occurrence.
    first: usize,
}

impl Candidate {
    fn score(&self) -> usize {
        let weight = match self.kind {
            Kind::Name | Kind::Identifier => 6,
            Kind::Phrase if self.named => 6,
            Kind::Phrase => 4,
            Kind::Date | Kind::Quantity => 1,
            Kind::Word => 0,
        };
        // Each repeat is worth a third of a name: a word said four times is a subject.
        weight + 2 * (self.count - 1).min(3)
    }

    fn words(&self) -> usize {
        self.tag.split(' ').count()
    }

    /// As a context sentence shows it.
    fn shown(&self) -> String {
        match (self.kind, self.article) {
            (Kind::Phrase | Kind::Word, Some(article)) => format!("{article} {}", self.written),
            _ => self.written.clone(),
        }
    }
}

/// The best `max` candidates, without one that a longer chosen one contains as whole words.
fn choose<'a>(candidates: impl Iterator<Item = &'a Candidate>, max: usize) -> Vec<&'a Candidate> {
    let mut order: Vec<&Candidate> = candidates.collect();
    order.sort_by(|a, b| {
        b.score()
            .cmp(&a.score())
            .then(a.first.cmp(&b.first))
            .then(b.words().cmp(&a.words()))
    });
    let mut chosen: Vec<&Candidate> = Vec::with_capacity(max);
    for candidate in order {
        if chosen.len() >= max {
            break;
        }
        if chosen
            .iter()
            .any(|c| contains_words(&c.tag, &candidate.tag))
        {
            continue;
        }
        // A longer phrase takes the place of the shorter ones it contains.
        match chosen
            .iter()
            .position(|c| contains_words(&candidate.tag, &c.tag))
        {
            Some(at) => {
                chosen[at] = candidate;
                let mut i = at + 1;
                while i < chosen.len() {
                    if contains_words(&candidate.tag, &chosen[i].tag) {
                        chosen.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => chosen.push(candidate),
        }
    }
    chosen
}

/// Whether `long` contains `short` as whole words (both lower-cased, single-spaced).
fn contains_words(long: &str, short: &str) -> bool {
    long.len() > short.len() && format!(" {long} ").contains(&format!(" {short} "))
}

/// Whether `haystack` contains `needle` with no letter or digit right before or after it.
fn contains_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The part of `text` that is read: its first [`SCAN_BYTES`], cut at a character boundary.
fn scanned(text: &str) -> &str {
    if text.len() <= SCAN_BYTES {
        return text;
    }
    let mut end = SCAN_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[derive(Debug, Clone)]
struct Entity {
    written: String,
    key: String,
}

/// Candidates and entities of one text.
#[derive(Debug, Default)]
struct Analysis {
    candidates: Vec<Candidate>,
    entities: Vec<Entity>,
    /// The name a chat turn opens with ("Caroline (1:56 pm …): …"), lower-cased: a name, but
    /// who speaks, not what about, so no link subject (every turn of hers would share it).
    speaker: Option<String>,
}

impl Analysis {
    /// Entities a link can be made for: all but the speaker.
    fn subjects(&self) -> impl Iterator<Item = &Entity> {
        self.entities
            .iter()
            .filter(|e| self.speaker.as_ref() != Some(&e.key))
    }
}

/// What a word is, before names are told from sentence openings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Stop words, common verbs and adverbs, contractions, single letters: never in a phrase.
    Filler,
    Number,
    /// "8th", "1st".
    Ordinal,
    /// "1:56", "10am" (with "pm" after it, a time is skipped whole).
    Time,
    /// "2024-03-15".
    IsoDate,
    Month,
    Identifier,
    Acronym,
    Capitalised,
    Plain,
}

#[derive(Debug)]
struct Token<'a> {
    text: &'a str,
    lower: String,
    /// The first word of a sentence (or of the text).
    opens_sentence: bool,
    /// Punctuation between the previous word and this one ("" for a split inside a token, as in
    /// "Berlin—Lisbon"); `None` when only white space separates them.
    after: Option<&'a str>,
    /// Written with "'s": "Caroline's".
    possessive: bool,
    class: Class,
}

impl Analysis {
    fn of(text: &str) -> Analysis {
        let tokens = tokens(scanned(text));
        let names = names(&tokens);
        let mut found = Found::default();
        let mut i = 0;
        while i < tokens.len() {
            if let Some(next) = found.date_or_time(&tokens, i) {
                i = next;
                continue;
            }
            let token = &tokens[i];
            i = match token.class {
                Class::Number => found.number(&tokens, i),
                Class::Identifier => {
                    found.add(Kind::Identifier, token.text.to_owned(), i, None, false);
                    found.entity(token.text);
                    i + 1
                }
                Class::Acronym | Class::Capitalised if names[i] => found.name(&tokens, &names, i),
                Class::Plain | Class::Capitalised => found.noun_phrase(&tokens, &names, i),
                _ => i + 1,
            };
        }
        let speaker = match tokens.as_slice() {
            [first, second, ..] if first.class == Class::Capitalised && names[0] => second
                .after
                .filter(|p| p.starts_with(['(', ':']))
                .map(|_| first.lower.clone()),
            _ => None,
        };
        Analysis {
            candidates: found.candidates,
            entities: found.entities,
            speaker,
        }
    }
}

#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    by_tag: HashMap<String, usize>,
    entities: Vec<Entity>,
}

impl Found {
    fn add(
        &mut self,
        kind: Kind,
        written: String,
        at: usize,
        article: Option<&'static str>,
        named: bool,
    ) {
        // A tag holds no comma ("May 8, 2023" is tagged "may 8 2023").
        let tag = written.to_lowercase().replace(',', "");
        if tag.is_empty() || tag.len() > MAX_KEYWORD_BYTES {
            return;
        }
        match self.by_tag.get(&tag) {
            Some(&index) => self.candidates[index].count += 1,
            None => {
                self.by_tag.insert(tag.clone(), self.candidates.len());
                self.candidates.push(Candidate {
                    written,
                    tag,
                    kind,
                    named,
                    article,
                    count: 1,
                    first: at,
                });
            }
        }
    }

    fn entity(&mut self, written: &str) {
        let key = written.to_lowercase();
        if self.entities.len() >= MAX_ENTITIES
            || key.len() > MAX_KEYWORD_BYTES
            || self.entities.iter().any(|e| e.key == key)
        {
            return;
        }
        self.entities.push(Entity {
            written: written.to_owned(),
            key,
        });
    }

    /// A date or a time starting at `i`: the index after it, the date recorded (a time is only
    /// skipped: "1:56 pm" says nothing about a memory's subject).
    fn date_or_time(&mut self, tokens: &[Token], i: usize) -> Option<usize> {
        let joined = |k: usize| k < tokens.len() && matches!(tokens[k].after, None | Some(","));
        let is = |k: usize, class: Class| joined(k) && tokens[k].class == class;
        let token = &tokens[i];
        match token.class {
            Class::Time => {
                let ampm = joined(i + 1) && matches!(tokens[i + 1].lower.as_str(), "am" | "pm");
                Some(i + 1 + usize::from(ampm))
            }
            Class::IsoDate => {
                self.add(Kind::Date, token.text.to_owned(), i, None, false);
                Some(i + 1)
            }
            Class::Number | Class::Ordinal if is_day(token) && is(i + 1, Class::Month) => {
                // "8 May", "8 May, 2023"
                let month = tokens[i + 1].text;
                if joined(i + 2) && is_year(&tokens[i + 2]) {
                    let written = format!("{} {month} {}", token.text, tokens[i + 2].text);
                    self.add(Kind::Date, written, i, None, false);
                    Some(i + 3)
                } else {
                    self.add(
                        Kind::Date,
                        format!("{} {month}", token.text),
                        i,
                        None,
                        false,
                    );
                    Some(i + 2)
                }
            }
            Class::Month if joined(i + 1) && is_year(&tokens[i + 1]) => {
                let written = format!("{} {}", token.text, tokens[i + 1].text);
                self.add(Kind::Date, written, i, None, false);
                Some(i + 2)
            }
            Class::Month if joined(i + 1) && is_day(&tokens[i + 1]) => {
                // "May 8", "May 8th, 2023"
                let day = tokens[i + 1].text;
                if joined(i + 2) && is_year(&tokens[i + 2]) {
                    let written = format!("{} {day}, {}", token.text, tokens[i + 2].text);
                    self.add(Kind::Date, written, i, None, false);
                    Some(i + 3)
                } else {
                    self.add(Kind::Date, format!("{} {day}", token.text), i, None, false);
                    Some(i + 2)
                }
            }
            Class::Number if is_year(token) => {
                self.add(Kind::Date, token.text.to_owned(), i, None, false);
                Some(i + 1)
            }
            _ => None,
        }
    }

    /// A number that is no date: with the word after it a quantity ("3 cups"); three digits or
    /// more make it an entity ("port 8080", "0.45").
    fn number(&mut self, tokens: &[Token], i: usize) -> usize {
        let token = &tokens[i];
        if token.text.chars().filter(char::is_ascii_digit).count() >= 3 {
            self.entity(token.text);
        }
        match tokens.get(i + 1) {
            Some(unit) if unit.after.is_none() && unit.class == Class::Plain => {
                let written = format!("{} {}", token.text, unit.text);
                self.add(Kind::Quantity, written, i, None, false);
                i + 2
            }
            _ => i + 1,
        }
    }

    /// A run of names from `i` ("New York", "Bank of America"), and the noun phrase it leads
    /// when plain words follow ("LGBTQ support group").
    fn name(&mut self, tokens: &[Token], names: &[bool], i: usize) -> usize {
        let mut end = i + 1;
        while end < tokens.len() && end - i < MAX_NAME_WORDS && tokens[end].after.is_none() {
            if names[end] {
                end += 1;
            } else if is_connector(&tokens[end].lower)
                && tokens.get(end + 1).is_some_and(|t| t.after.is_none())
                && names.get(end + 1) == Some(&true)
                && end + 1 - i < MAX_NAME_WORDS
            {
                end += 2;
            } else {
                break;
            }
        }
        let name = join(&tokens[i..end]);
        self.add(Kind::Name, name.clone(), i, None, false);
        self.entity(&name);
        // Only an acronym leads a phrase: after "Anna" the next word is as likely her verb
        // ("Anna cooks dinner"), and after a name in another language, a word the English
        // stop words do not know ("Berlin nach").
        let leads = end == i + 1 && tokens[i].class == Class::Acronym && !tokens[i].possessive;
        let verb_next = tokens.get(end).is_some_and(|t| looks_like_verb(&t.lower));
        let mut tail = end;
        while leads
            && !verb_next
            && tail < tokens.len()
            && tail - end < MAX_PHRASE_WORDS - 1
            && tokens[tail].after.is_none()
            && tokens[tail].class == Class::Plain
        {
            tail += 1;
        }
        if tail > end {
            let written = format!("{name} {}", join(&tokens[end..tail]));
            self.add(Kind::Phrase, written, i, article_before(tokens, i), true);
        }
        tail
    }

    /// A run of plain words from `i`: a phrase of its last three words, or a single word.
    fn noun_phrase(&mut self, tokens: &[Token], names: &[bool], i: usize) -> usize {
        let mut end = i + 1;
        while end < tokens.len()
            && tokens[end].after.is_none()
            && tokens[end].class == Class::Plain
            && !names[end]
        {
            end += 1;
        }
        let mut first = i;
        let before = (i > 0 && tokens[i].after.is_none()).then(|| &tokens[i - 1]);
        // "the user drinks three cups", "Anna cooks", "and avoids mushrooms": a word in -s
        // after its subject, or opening a longer run after a word that is no determiner, is
        // a verb.
        if looks_like_verb(&tokens[i].lower)
            && before.is_some_and(|b| {
                names[i - 1]
                    || is_subject(&b.lower)
                    || (end - i > 1 && b.class == Class::Filler && !is_determiner(&b.lower))
            })
        {
            first += 1;
        }
        // "to renew the passport": a lone word between "to" and a determiner is a verb.
        let infinitive = end == i + 1
            && before.is_some_and(|b| b.lower == "to")
            && tokens
                .get(end)
                .is_some_and(|n| n.after.is_none() && is_article_or_possessive(&n.lower));
        let start = end.saturating_sub(MAX_PHRASE_WORDS).max(first);
        if infinitive
            || start == end
            || (end - start == 1 && looks_like_adjective(&tokens[start].lower))
        {
            return end;
        }
        let words: Vec<String> = tokens[start..end]
            .iter()
            .map(|t| {
                if t.class == Class::Capitalised {
                    // A sentence's first word, not a name: written as it would be mid-sentence.
                    t.lower.clone()
                } else {
                    t.text.to_owned()
                }
            })
            .collect();
        let kind = if words.len() > 1 {
            Kind::Phrase
        } else {
            Kind::Word
        };
        let article = if start == first {
            article_before(tokens, i)
        } else {
            None
        };
        self.add(kind, words.join(" "), start, article, false);
        end
    }
}

/// A word in -s that may be a verb after its subject ("drinks", "cooks"), not "glass" or "bus".
fn looks_like_verb(lower: &str) -> bool {
    lower.ends_with('s') && !lower.ends_with("ss") && !lower.ends_with("us") && lower.len() > 3
}

/// Words that open a noun phrase, after which a word in -s is a plural noun ("the sports cars").
fn is_determiner(lower: &str) -> bool {
    is_article_or_possessive(lower)
        || matches!(
            lower,
            "this"
                | "that"
                | "these"
                | "those"
                | "some"
                | "any"
                | "no"
                | "many"
                | "few"
                | "several"
                | "all"
                | "both"
                | "other"
                | "such"
                | "of"
                | "in"
                | "on"
                | "at"
                | "for"
                | "with"
                | "from"
                | "by"
                | "about"
        )
}

fn is_article_or_possessive(lower: &str) -> bool {
    matches!(
        lower,
        "a" | "an" | "the" | "my" | "your" | "his" | "her" | "our" | "their" | "its"
    )
}

/// Common irregular past tenses: after a capitalised word that opens a sentence they say it is
/// someone ("Tom said").
fn is_irregular_past(lower: &str) -> bool {
    matches!(
        lower,
        "said"
            | "went"
            | "met"
            | "told"
            | "got"
            | "made"
            | "took"
            | "saw"
            | "came"
            | "bought"
            | "gave"
            | "found"
            | "felt"
            | "left"
            | "ran"
            | "wrote"
            | "thought"
            | "knew"
            | "began"
            | "became"
            | "brought"
            | "kept"
            | "sent"
            | "lost"
            | "won"
            | "paid"
            | "heard"
            | "sold"
            | "spent"
            | "built"
            | "taught"
            | "drove"
            | "flew"
            | "ate"
    )
}

/// Who a verb can follow.
fn is_subject(lower: &str) -> bool {
    matches!(
        lower,
        "i" | "he" | "she" | "it" | "we" | "they" | "you" | "who" | "that" | "which" | "user"
    )
}

/// A single word that describes rather than names ("powerful", "nervous", "quickly"): no
/// subject on its own.
fn looks_like_adjective(lower: &str) -> bool {
    ["ful", "ous", "less", "ly"]
        .iter()
        .any(|suffix| lower.ends_with(suffix))
        && !matches!(
            lower,
            "family"
                | "italy"
                | "july"
                | "supply"
                | "reply"
                | "assembly"
                | "ally"
                | "rally"
                | "lily"
        )
}

fn join(tokens: &[Token]) -> String {
    let words: Vec<&str> = tokens.iter().map(|t| t.text).collect();
    words.join(" ")
}

/// The article or possessive right before token `i` ("a", "the", "my").
fn article_before(tokens: &[Token], i: usize) -> Option<&'static str> {
    if i == 0 || tokens[i].after.is_some() {
        return None;
    }
    // The memory's own voice: "my sister" reads as the writer wrote it.
    const ARTICLES: [&str; 9] = ["a", "an", "the", "my", "your", "his", "her", "our", "their"];
    ARTICLES
        .into_iter()
        .find(|article| *article == tokens[i - 1].lower)
}

/// Which tokens are names: acronyms always; a capitalised word inside a sentence; one opening a
/// sentence only when the text capitalises it elsewhere too, when a name follows it, or when it
/// introduces a speaker ("Caroline (1:56 pm …)", "Caroline: …"), or when a verb in the past
/// tense follows it ("Anna visited").
fn names(tokens: &[Token]) -> Vec<bool> {
    let mut capitalised: HashMap<&str, (usize, bool)> = HashMap::new();
    for token in tokens {
        if token.class == Class::Capitalised {
            let seen = capitalised.entry(token.lower.as_str()).or_default();
            seen.0 += 1;
            seen.1 |= !token.opens_sentence;
        }
    }
    let mut names: Vec<bool> = tokens
        .iter()
        .map(|t| match t.class {
            Class::Acronym => true,
            Class::Capitalised => {
                !t.opens_sentence
                    || t.possessive
                    || capitalised
                        .get(t.lower.as_str())
                        .is_some_and(|&(count, inside)| count > 1 || inside)
            }
            _ => false,
        })
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.class != Class::Capitalised || names[i] {
            continue;
        }
        let next = tokens.get(i + 1);
        let leads_name = next.is_some_and(|n| n.after.is_none() && names[i + 1]);
        // "Anna visited Oslo": what did something in the past is most often someone.
        let acted = next.is_some_and(|n| {
            n.after.is_none() && (is_past_tense(&n.lower) || is_irregular_past(&n.lower))
        });
        let speaker = next.is_some_and(|n| {
            n.after.is_some_and(|p| {
                p.starts_with('(') || (p.starts_with(':') && !is_heading(&token.lower))
            })
        });
        names[i] = leads_name || acted || speaker;
    }
    names
}

/// The text as words with what separates them.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out: Vec<Token> = Vec::new();
    let mut opens_sentence = true;
    // Punctuation seen since the last word.
    let mut pending: Option<&str> = None;
    // A line break ends a sentence: list items and headings start with capitals too.
    let lines = text
        .lines()
        .flat_map(|line| std::iter::once(None).chain(line.split_whitespace().map(Some)));
    for chunk in lines {
        let Some(chunk) = chunk else {
            if !out.is_empty() {
                opens_sentence = true;
                pending = Some(pending.unwrap_or("\n"));
            }
            continue;
        };
        let Some(start) = chunk.find(char::is_alphanumeric) else {
            opens_sentence |= ends_sentence(chunk);
            pending = Some(pending.map_or(chunk, |p| if p.is_empty() { chunk } else { p }));
            continue;
        };
        let end = chunk
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_alphanumeric())
            .map_or(chunk.len(), |(at, c)| at + c.len_utf8());
        if start > 0 {
            pending = Some(pending.unwrap_or(&chunk[..start]));
        }
        let whole = &chunk[start..end];
        let core = strip_possessive(whole);
        let possessive = core.len() < whole.len();
        // One slash parts two words ("and/or", "Berlin/Lisbon"); more make a path.
        let one_slash = core.matches('/').count() == 1 && !core.contains("://");
        let parts = core
            .split(|c: char| !c.is_alphanumeric() && (!is_joiner(c) || (c == '/' && one_slash)))
            .map(|p| strip_elision(p.trim_matches(|c: char| !c.is_alphanumeric())))
            .filter(|p| !p.is_empty());
        for (n, part) in parts.enumerate() {
            let after = if n == 0 { pending.take() } else { Some("") };
            out.push(Token {
                text: part,
                lower: part.to_lowercase(),
                opens_sentence,
                after,
                possessive: false,
                class: Class::Filler,
            });
            opens_sentence = false;
        }
        if possessive && let Some(last) = out.last_mut() {
            // "Caroline's painting": the owner is one thing, what is owned another.
            last.possessive = true;
            pending = Some("'s");
        }
        let trail = &chunk[end..];
        if !trail.is_empty() {
            if is_abbreviation(core) && trail == "." {
                // "Dr. Smith" is one name, in one sentence.
                continue;
            }
            pending = Some(trail);
            if ends_sentence(trail) {
                opens_sentence = true;
            }
        }
    }
    for token in &mut out {
        token.class = classify(token);
    }
    out
}

fn classify(token: &Token) -> Class {
    let text = token.text;
    let lower = token.lower.as_str();
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 && digits > 0 {
        if text.contains(':') {
            return Class::Time;
        }
        if is_iso_date(text) {
            return Class::IsoDate;
        }
        if text.chars().all(|c| c.is_ascii_digit() || ".,".contains(c)) {
            return Class::Number;
        }
        return Class::Identifier;
    }
    if digits > 0 {
        let leading = text.chars().take_while(char::is_ascii_digit).count();
        if leading == digits {
            // ASCII digits are one byte each.
            match lower.get(leading..) {
                Some("st" | "nd" | "rd" | "th") => return Class::Ordinal,
                Some("am" | "pm") => return Class::Time,
                _ => {}
            }
        }
        return Class::Identifier;
    }
    let capitalised = text.chars().next().is_some_and(char::is_uppercase);
    if capitalised && is_month(lower) {
        return Class::Month;
    }
    if letters < 2 || is_filler(lower) || matches!(lower, "e.g" | "i.e" | "etc") {
        return Class::Filler;
    }
    // "file.rs", "example.com", but not "U.S".
    let dotted = text
        .rsplit_once('.')
        .is_some_and(|(_, last)| last.chars().count() >= 2);
    if text.contains('_')
        || text.contains("::")
        || text.contains('/')
        || text.contains('@')
        || dotted
        || is_camel_case(text)
    {
        return Class::Identifier;
    }
    if letters >= 2
        && text
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase)
    {
        return Class::Acronym;
    }
    if capitalised {
        // "Moved to Lisbon": a verb opening a sentence is not a name.
        if token.opens_sentence && is_past_tense(lower) {
            return Class::Filler;
        }
        return Class::Capitalised;
    }
    if is_past_tense(lower) {
        return Class::Filler;
    }
    Class::Plain
}

/// A lower case letter followed later by a capital ("TenantIndex", "iPhone", "PostgreSQL").
fn is_camel_case(text: &str) -> bool {
    let mut seen_lower = false;
    for c in text.chars() {
        if c.is_lowercase() {
            seen_lower = true;
        } else if c.is_uppercase() && seen_lower {
            return true;
        }
    }
    false
}

fn is_iso_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() <= 2 && d.len() <= 2
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
}

/// "8", "8th": a day of a month.
fn is_day(token: &Token) -> bool {
    let digits: String = token
        .text
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let whole = match token.class {
        Class::Number => digits.len() == token.text.len(),
        Class::Ordinal => true,
        _ => false,
    };
    whole && digits.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

fn is_year(token: &Token) -> bool {
    token.class == Class::Number
        && token.text.len() == 4
        && token
            .text
            .parse::<u32>()
            .is_ok_and(|y| (1900..=2199).contains(&y))
}

fn is_month(lower: &str) -> bool {
    crate::when::month_of(lower).is_some()
}

/// Characters that keep a word whole: "e-bikes", "tenant_index.rs", "a::b", "1:56", "don't".
fn is_joiner(c: char) -> bool {
    matches!(
        c,
        '-' | '_' | '.' | ':' | '/' | '\'' | '’' | '@' | '+' | '#'
    )
}

/// "l'équipe" → "équipe", "m'a" → "a": French and Italian elisions, by a lower-case letter
/// (or "qu") before the apostrophe. "O'Brien" keeps its capital and its apostrophe.
fn strip_elision(word: &str) -> &str {
    match word.split_once(['\'', '’']) {
        Some((prefix, rest))
            if !rest.is_empty()
                && (prefix == "qu"
                    || (prefix.chars().count() == 1 && prefix.chars().all(char::is_lowercase))) =>
        {
            rest
        }
        _ => word,
    }
}

/// "Caroline's" → "Caroline".
fn strip_possessive(word: &str) -> &str {
    for suffix in ["'s", "’s", "'S", "’S"] {
        if let Some(stem) = word.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return stem;
        }
    }
    word
}

fn ends_sentence(punctuation: &str) -> bool {
    punctuation.contains(['.', '!', '?', ':', '…'])
}

/// Short words written with a full stop that does not end the sentence ("Dr. Smith").
fn is_abbreviation(word: &str) -> bool {
    let lower = word.to_lowercase();
    matches!(
        lower.as_str(),
        "mr" | "mrs" | "ms" | "dr" | "prof" | "st" | "jr" | "sr" | "vs" | "e.g" | "i.e" | "approx"
    ) || (word.chars().count() == 1 && word.chars().all(char::is_uppercase))
}

/// Words a capitalised opening word followed by a colon is a heading, not a speaker, for.
fn is_heading(lower: &str) -> bool {
    matches!(
        lower,
        "note"
            | "notes"
            | "summary"
            | "update"
            | "todo"
            | "fix"
            | "bug"
            | "idea"
            | "reminder"
            | "question"
            | "answer"
            | "warning"
            | "error"
            | "important"
            | "tip"
            | "context"
            | "goal"
            | "task"
            | "decision"
            | "status"
            | "result"
            | "example"
            | "fact"
            | "preference"
    )
}

/// Lower-case words that join the parts of a name ("Bank of America", "Leonardo da Vinci").
fn is_connector(lower: &str) -> bool {
    matches!(
        lower,
        "of" | "de"
            | "da"
            | "di"
            | "du"
            | "del"
            | "van"
            | "von"
            | "der"
            | "la"
            | "le"
            | "y"
            | "and"
    )
}

/// "moved", "started": past tenses, which are no part of a noun phrase. Five letters at least
/// and not "-eed", so "red", "bed" and "speed" stay words.
fn is_past_tense(lower: &str) -> bool {
    lower.ends_with("ed")
        && lower.chars().count() >= 5
        && !lower.ends_with("eed")
        && !matches!(lower, "hundred" | "sacred" | "naked" | "wicked" | "beloved")
}

/// Words that never belong to a phrase: stop words, contractions ("don't", "I'm"), and common
/// verbs, adverbs and fillers that the stop-word list (kept short for ranking) lets through.
fn is_filler(lower: &str) -> bool {
    if is_stop_word(lower) {
        return true;
    }
    if let Some((_, ending)) = lower.split_once(['\'', '’'])
        && matches!(ending, "t" | "m" | "re" | "ve" | "ll" | "d" | "s")
    {
        return true;
    }
    static FILLER: std::sync::LazyLock<HashSet<&str>> =
        std::sync::LazyLock::new(|| FILLER_WORDS.split_whitespace().collect());
    FILLER.contains(lower)
}

/// Common verbs, adverbs and fillers that the stop-word list lets through, separated by spaces.
const FILLER_WORDS: &str = "\
    actually add added adds again ago almost already although always another anyone anything \
    anyway around ask asked asks away back became because become began believe both bought \
    bring brought build builds built buy call came come comes coming currently definitely \
    during each either else enjoy enjoys even ever every everyone everything exactly feel \
    feels felt few finally find finds found friday gave get gets getting give gives go goes \
    going gone gonna got gotten guess hello hey hi hope however im keep keeps kept knew know \
    knows last lately later less let lets like likes live lives lol look looking looks lot \
    lots love loves made make makes making many may maybe mean means meant met might mine \
    monday much must myself need needs never next nothing now often oh ok okay one perhaps pick \
    please probably put quite ran rather really recently right said saturday saw say says see \
    seems seen sent set several shall show showed shows since someone something sometimes soon \
    still sunday sure take takes taking tell thank thanks thing things think thinks though \
    thought thursday today together told tomorrow tonight took totally tried try trying \
    tuesday us use uses using usually via want wants wednesday well went whether within \
    without work working works wow write writes wrote yeah yes yesterday yet remember check \
    send day days week weeks month months year years time times";

#[cfg(test)]
mod tests {
    use super::*;

    /// One text: its first five key phrases, its named entities and its context sentence.
    fn check(text: &str, phrases: &[&str], entities: &[&str], context: &str) {
        let found = key_phrases(text, 5);
        assert_eq!(found, phrases, "key phrases of {text:?}");
        assert_eq!(named_entities(text), entities, "named entities of {text:?}");
        assert_eq!(
            context_sentence("general", text, &found),
            context,
            "context of {text:?}"
        );
    }

    #[test]
    fn phrases_entities_and_context_of_real_looking_texts() {
        check(
            "I moved from Berlin to Lisbon in March 2024 for a job at a bike startup",
            &["berlin", "lisbon", "bike startup", "march 2024", "job"],
            &["berlin", "lisbon"],
            "A general memory about Berlin, Lisbon and a bike startup (March 2024).",
        );
        check(
            "The bike startup where I work builds cargo e-bikes",
            &["bike startup", "cargo e-bikes"],
            &[],
            "A general memory about the bike startup and cargo e-bikes.",
        );
        // A LoCoMo chat turn: the speaker opens the text and is still a name; the time is no
        // phrase; "powerful" describes, it names nothing.
        check(
            "Caroline (1:56 pm on 8 May, 2023): I went to a LGBTQ support group yesterday and \
             it was so powerful.",
            &["caroline", "lgbtq support group", "8 may 2023"],
            &["caroline", "lgbtq"],
            "A general memory about Caroline and a LGBTQ support group (8 May 2023).",
        );
        check(
            "Melanie (8:10 am on 20 July, 2023): Caroline's painting of the sunset over Lake \
             Tahoe is in my living room now.",
            &[
                "melanie",
                "caroline",
                "lake tahoe",
                "living room",
                "20 july 2023",
            ],
            &["melanie", "caroline", "lake tahoe"],
            "A general memory about Melanie, Caroline and Lake Tahoe (20 July 2023).",
        );
        check(
            "Fixed the flaky test in crates/index/src/tenant_index.rs: TenantIndex::lexical \
             returned stale ids after remove(); bumped MAX_LINKS to 5 and the timeout to 2500 ms.",
            &[
                "crates/index/src/tenant_index.rs",
                "tenantindex::lexical",
                "max_links",
                "flaky test",
                "stale ids",
            ],
            &[
                "crates/index/src/tenant_index.rs",
                "tenantindex::lexical",
                "max_links",
                "2500",
            ],
            "A general memory about crates/index/src/tenant_index.rs, TenantIndex::lexical and \
             MAX_LINKS.",
        );
        check(
            "New York is where Anna met Dr. Smith on May 8th, 2023.",
            &["new york", "anna", "dr smith", "may 8th 2023"],
            &["new york", "anna", "dr smith"],
            "A general memory about New York, Anna and Dr Smith (May 8th, 2023).",
        );
        check(
            "Summary: the user prefers dark mode in VS Code and uses PostgreSQL 16 at work.",
            &["vs code", "postgresql", "dark mode", "summary"],
            &["vs code", "postgresql"],
            "A general memory about VS Code, PostgreSQL and dark mode.",
        );
        check(
            "User drinks three cups of coffee a day",
            &["three cups", "coffee"],
            &[],
            "A general memory about three cups and coffee.",
        );
        check(
            "Coffee gives the user acid reflux",
            &["acid reflux", "coffee"],
            &[],
            "A general memory about acid reflux and coffee.",
        );
        check(
            "Ich bin im März 2024 von Berlin nach Lissabon gezogen, um bei einem \
             Fahrrad-Startup zu arbeiten.",
            &["märz", "berlin", "lissabon", "fahrrad-startup", "ich bin"],
            &["märz", "berlin", "lissabon", "fahrrad-startup"],
            "A general memory about März, Berlin and Lissabon.",
        );
        check(
            "Je travaille à Montréal depuis 2019 ; l'équipe de Québec m'a rejoint.",
            &["montréal", "québec", "je travaille", "équipe de", "2019"],
            &["montréal", "québec"],
            "A general memory about Montréal, Québec and je travaille (2019).",
        );
        check("", &[], &[], "A general memory.");
        check("the", &[], &[], "A general memory.");
        check("Coffee", &["coffee"], &[], "A general memory about coffee.");
        check("Lisbon", &["lisbon"], &[], "A general memory about lisbon.");
        check(
            "2024-03-15",
            &["2024-03-15"],
            &[],
            "A general memory from 2024-03-15.",
        );
        // Verbs are no phrases: in -s after a subject or a conjunction, in the past after a
        // name, between "to" and an article.
        check(
            "The user is vegetarian and avoids mushrooms",
            &["vegetarian", "mushrooms"],
            &[],
            "A general memory about vegetarian and mushrooms.",
        );
        check(
            "Tom said the meeting with Acme Corp moved to Thursday at 3pm",
            &["tom", "acme corp", "meeting"],
            &["tom", "acme corp"],
            "A general memory about Tom, Acme Corp and the meeting.",
        );
        check(
            "My sister lives in São Paulo and works as a nurse",
            &["são paulo", "sister", "nurse"],
            &["são paulo"],
            "A general memory about São Paulo, my sister and a nurse.",
        );
        check(
            "Remember to renew the passport before the trip to Japan in July",
            &["japan", "passport", "trip"],
            &["japan"],
            "A general memory about Japan, the passport and the trip.",
        );
        // Each line starts a sentence; one slash parts two words, more make a path.
        check(
            "Shopping list:\n- Buy milk and/or oat milk\n- Pick up the parcel",
            &["shopping list", "oat milk", "parcel"],
            &[],
            "A general memory about shopping list, oat milk and the parcel.",
        );
    }

    #[test]
    fn filler_words_are_words_and_not_names_of_things() {
        assert!(is_filler("yesterday") && is_filler("don't") && is_filler("actually"));
        assert!(is_filler("working") && !is_filler("startup") && !is_filler("act"));
    }

    #[test]
    fn a_script_without_spaces_gives_bounded_phrases() {
        // No word breaks to find: one phrase if it is short enough, none if not.
        assert_eq!(
            key_phrases("東京で新しい仕事を始めた", 3),
            vec!["東京で新しい仕事を始めた"]
        );
        assert!(key_phrases(&"東京で新しい仕事を始めた".repeat(4), 3).is_empty());
    }

    #[test]
    fn only_the_first_few_kilobytes_are_read() {
        let mut text = String::from("Anna repaired the old boiler in Porto. ");
        while text.len() < 50_000 {
            text.push_str("The boiler works again and the house is warm. ");
        }
        text.push_str("Zanzibar is mentioned only at the very end.");
        let started = std::time::Instant::now();
        let phrases = key_phrases(&text, 5);
        let entities = named_entities(&text);
        let context = context_sentence("general", &text, &phrases);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(phrases[..2], ["anna", "porto"]);
        assert!(phrases.iter().any(|p| p.contains("boiler")), "{phrases:?}");
        assert_eq!(entities, ["anna", "porto"]);
        assert!(!context.contains("Zanzibar") && context.chars().count() <= MAX_CONTEXT_CHARS);
    }

    #[test]
    fn shared_subjects_name_what_two_memories_both_mention() {
        let moved = "I moved from Berlin to Lisbon in March 2024 for a job at a bike startup";
        assert_eq!(
            shared_subjects(
                moved,
                "The bike startup where I work builds cargo e-bikes",
                3
            ),
            ["the bike startup"]
        );
        // A name that opens the other's sentence is still the same name.
        assert_eq!(
            shared_subjects(moved, "Lisbon is sunny and the bike startup is hiring", 3),
            ["Lisbon", "the bike startup"]
        );
        // Case matters for a name: "apple" is not "Apple".
        assert!(shared_subjects("I work at Apple now", "I ate an apple", 3).is_empty());
        // A shared name inside a shared longer phrase is named once.
        assert_eq!(
            shared_subjects(
                "I joined a LGBTQ support group",
                "The LGBTQ support group met",
                3
            ),
            ["LGBTQ support group"]
        );
        assert!(shared_subjects("Cats sleep a lot", "Dogs bark", 3).is_empty());
        // Who speaks in a chat turn is no subject: her turns share her name.
        let turn = "Caroline (1:56 pm on 8 May, 2023): I went to a LGBTQ support group.";
        assert_eq!(link_subjects(turn), ["lgbtq", "lgbtq support group"]);
        assert_eq!(named_entities(turn), ["caroline", "lgbtq"]);
        assert!(shared_subjects(turn, "Caroline (2:01 pm on 8 May, 2023): Thanks!", 3).is_empty());
        assert_eq!(
            shared_subjects(turn, "Melanie: did Caroline like the LGBTQ group?", 3),
            ["LGBTQ"]
        );
        assert_eq!(link_subjects(moved), ["berlin", "lisbon", "bike startup"]);
    }

    #[test]
    fn context_sentences_are_grammatical_and_bounded() {
        let phrases = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            context_sentence("events", "Anna visited Oslo", &phrases(&["anna", "oslo"])),
            "An events memory about Anna and Oslo."
        );
        // Phrases the text does not hold (a caller's tags) are named as they are.
        assert_eq!(
            context_sentence("work", "nothing here", &phrases(&["deadline"])),
            "A work memory about deadline."
        );
        let long = "x".repeat(90);
        let context = context_sentence("general", "", &phrases(&[&long, &long, &long]));
        assert!(context.chars().count() <= MAX_CONTEXT_CHARS, "{context}");
        assert!(context.ends_with('.'), "{context}");
        let context = context_sentence(&"c".repeat(300), "", &[]);
        assert!(context.chars().count() <= MAX_CONTEXT_CHARS, "{context}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_gives_bounded_tags_and_context(text in "\\PC{0,300}") {
            let phrases = key_phrases(&text, 5);
            proptest::prop_assert!(phrases.len() <= 5);
            for phrase in &phrases {
                proptest::prop_assert!(!phrase.is_empty() && phrase.len() <= MAX_KEYWORD_BYTES);
                proptest::prop_assert!(!phrase.contains(','));
                proptest::prop_assert_eq!(phrase, &phrase.to_lowercase());
            }
            let context = context_sentence("general", &text, &phrases);
            proptest::prop_assert!(context.chars().count() <= MAX_CONTEXT_CHARS);
            let _ = shared_subjects(&text, &text, 3);
            let _ = link_subjects(&text);
        }
    }
}
