//! Which language a customer writes in, well enough to answer in it: the script first (Arabic,
//! Devanagari), then the common short words of each Latin-script language the fallback speaks.
//! A guess that finds nothing is `None`, and the caller keeps the conversation's last language.

/// Languages the assistant's own sentences (fallback, hand-off) are written in.
pub const SUPPORTED: &[&str] = &["en", "es", "pt", "fr", "de", "ar", "hi", "id"];

/// Short words that are common in one language and rare in the others.
const MARKERS: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "is", "are", "you", "what", "how", "and", "my", "i", "do", "can", "hello", "hi",
            "please", "thanks", "when", "where", "have", "order", "want",
        ],
    ),
    (
        "es",
        &[
            "el", "la", "los", "las", "es", "que", "qué", "hola", "gracias", "por", "favor",
            "cuándo", "dónde", "quiero", "tienen", "mi", "usted", "cómo", "está", "pedido", "y",
        ],
    ),
    (
        "pt",
        &[
            "o", "os", "as", "é", "você", "olá", "oi", "obrigado", "obrigada", "quando", "onde",
            "quero", "meu", "minha", "não", "está", "vocês", "pedido", "como", "tem",
        ],
    ),
    (
        "fr",
        &[
            "le", "les", "est", "vous", "bonjour", "merci", "quand", "où", "je", "veux", "mon",
            "ma", "pas", "avez", "commande", "comment", "et", "une", "des", "suis",
        ],
    ),
    (
        "de",
        &[
            "der",
            "die",
            "das",
            "ist",
            "sie",
            "hallo",
            "danke",
            "wann",
            "wo",
            "ich",
            "möchte",
            "mein",
            "meine",
            "nicht",
            "haben",
            "bestellung",
            "wie",
            "und",
            "bitte",
            "guten",
        ],
    ),
    (
        "id",
        &[
            "apa",
            "saya",
            "anda",
            "terima",
            "kasih",
            "kapan",
            "dimana",
            "di",
            "mana",
            "mau",
            "ingin",
            "pesanan",
            "bagaimana",
            "tidak",
            "ada",
            "halo",
            "selamat",
            "yang",
            "dan",
            "bisa",
        ],
    ),
];

/// The language of `text`, when it says enough.
pub fn detect(text: &str) -> Option<&'static str> {
    let mut arabic = 0usize;
    let mut devanagari = 0usize;
    let mut letters = 0usize;
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        match c as u32 {
            0x0600..=0x06FF | 0x0750..=0x077F | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => arabic += 1,
            0x0900..=0x097F => devanagari += 1,
            _ => {}
        }
    }
    if letters > 0 && arabic * 2 >= letters {
        return Some("ar");
    }
    if letters > 0 && devanagari * 2 >= letters {
        return Some("hi");
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut best: Option<(&'static str, usize)> = None;
    for (language, markers) in MARKERS {
        let score = words
            .iter()
            .filter(|w| markers.contains(&w.as_str()))
            .count();
        if score > 0 && best.is_none_or(|(_, top)| score > top) {
            best = Some((language, score));
        }
    }
    best.map(|(language, _)| language)
}

/// The primary part of a code (`pt-br` -> `pt`), if the assistant speaks it; else English.
pub fn speakable(code: &str) -> &'static str {
    let primary = code
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    SUPPORTED
        .iter()
        .find(|l| **l == primary)
        .copied()
        .unwrap_or("en")
}

/// The language's name in English, for the model's instructions.
pub fn name(code: &str) -> &'static str {
    match speakable(code) {
        "es" => "Spanish",
        "pt" => "Portuguese",
        "fr" => "French",
        "de" => "German",
        "ar" => "Arabic",
        "hi" => "Hindi",
        "id" => "Indonesian",
        _ => "English",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_heard_in_their_language() {
        for (text, language) in [
            ("Hello, when do you open?", "en"),
            ("Hola, ¿cuándo abren la tienda?", "es"),
            ("Olá, quando vocês abrem?", "pt"),
            ("Bonjour, quand est-ce que vous ouvrez ?", "fr"),
            ("Hallo, wann haben Sie geöffnet?", "de"),
            ("مرحبا، متى تفتحون؟", "ar"),
            ("नमस्ते, आप कब खुलते हैं?", "hi"),
            ("Halo, kapan toko anda buka?", "id"),
        ] {
            assert_eq!(detect(text), Some(language), "{text}");
        }
        assert_eq!(detect("12345 ??"), None);
        assert_eq!(speakable("pt-br"), "pt");
        assert_eq!(speakable("ja"), "en");
    }
}
