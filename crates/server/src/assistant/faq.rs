//! The FAQ answer: the entry whose keywords the customer used, or whose question shares most of
//! its words with what the customer wrote; nothing when no entry is close enough.

use super::settings::Faq;

/// Words too common to say what a question is about (in the languages the assistant speaks).
const COMMON: &[&str] = &[
    "the", "and", "you", "your", "are", "what", "how", "can", "does", "with", "for", "have", "que",
    "los", "las", "por", "una", "como", "para", "con", "est", "les", "des", "vous", "une", "pour",
    "der", "die", "das", "und", "ist", "sie", "ich", "yang", "dan", "apa", "ada", "não", "com",
    "uma", "vocês", "você",
];

/// The words of `text`, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn significant(text: &str) -> Vec<String> {
    let mut found: Vec<String> = words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 3 && !COMMON.contains(&w.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Whether `phrase` (one word or several) appears in `said` as whole words.
pub fn contains_phrase(said: &[String], phrase: &str) -> bool {
    let phrase = words(phrase);
    !phrase.is_empty()
        && said
            .windows(phrase.len())
            .any(|window| window == phrase.as_slice())
}

/// The best entry for `text`, if one is close enough to answer with.
pub fn best_match<'a>(faqs: &'a [Faq], text: &str) -> Option<&'a Faq> {
    let said = words(text);
    let said_significant = significant(text);
    let mut best: Option<(&Faq, f64)> = None;
    for faq in faqs {
        let keyword_hits = faq
            .keywords
            .iter()
            .filter(|k| contains_phrase(&said, k))
            .count();
        let question = significant(&faq.question);
        let shared = question
            .iter()
            .filter(|w| said_significant.contains(w))
            .count();
        let overlap = if question.is_empty() {
            0.0
        } else {
            shared as f64 / question.len() as f64
        };
        let close = keyword_hits > 0 || (shared >= 2 && overlap >= 0.5) || overlap >= 0.99;
        if !close {
            continue;
        }
        let score = keyword_hits as f64 * 2.0 + overlap;
        if best.is_none_or(|(_, top)| score > top) {
            best = Some((faq, score));
        }
    }
    best.map(|(faq, _)| faq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faq(question: &str, answer: &str, keywords: &[&str]) -> Faq {
        Faq {
            question: question.into(),
            answer: answer.into(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    #[test]
    fn keywords_and_shared_words_find_the_entry_and_small_talk_finds_none() {
        let faqs = vec![
            faq(
                "What are your opening hours?",
                "9 to 6, Monday to Friday.",
                &["open", "opening hours"],
            ),
            faq(
                "Do you deliver to my city?",
                "We deliver nationwide.",
                &["delivery", "shipping"],
            ),
            faq("How much does a repair cost?", "From 20 euros.", &[]),
        ];
        let answer = |text: &str| best_match(&faqs, text).map(|f| f.answer.as_str());
        assert_eq!(
            answer("when are you OPEN tomorrow?"),
            Some("9 to 6, Monday to Friday.")
        );
        assert_eq!(answer("is shipping free?"), Some("We deliver nationwide."));
        assert_eq!(
            answer("how much would a bike repair cost me"),
            Some("From 20 euros.")
        );
        assert_eq!(answer("thanks, see you"), None);
        // A keyword must be a whole word: "opener" is not "open".
        assert_eq!(answer("I lost my bottle opener"), None);
    }
}
