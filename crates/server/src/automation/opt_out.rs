//! Opt-out words: a customer who answers "stop" (in their language) leaves every sequence.
//!
//! The whole message must be the word or phrase (punctuation and case aside), the way SMS and
//! WhatsApp senders treat STOP: "stop" opts out, "can you stop by the shop?" does not.

use crate::assistant::faq;

/// Words that opt out in the languages the assistant speaks; a sequence adds its own.
pub const DEFAULT_WORDS: &[&str] = &[
    // English
    "stop",
    "stop all",
    "unsubscribe",
    "opt out",
    "optout",
    "cancel subscription",
    // Spanish
    "baja",
    "darme de baja",
    "parar",
    "detener",
    "cancelar suscripción",
    "no más mensajes",
    // Portuguese
    "pare",
    "sair",
    "descadastrar",
    "cancelar inscrição",
    // French
    "arrêt",
    "arrêter",
    "arrete",
    "désabonner",
    "se désabonner",
    "désinscription",
    // German
    "stopp",
    "abmelden",
    "abbestellen",
    // Arabic
    "توقف",
    "إيقاف",
    "الغاء الاشتراك",
    "إلغاء الاشتراك",
    // Hindi
    "रुको",
    "बंद करो",
    "बंद",
    // Indonesian
    "berhenti",
    "henti",
    "berhenti langganan",
];

/// Whether `said` is, as a whole, one of the default words or one of `extra`.
pub fn is_opt_out(said: &str, extra: &[String]) -> bool {
    let said = faq::words(said);
    if said.is_empty() {
        return false;
    }
    DEFAULT_WORDS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .any(|word| faq::words(word) == said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_message_must_be_the_word() {
        assert!(is_opt_out("STOP", &[]));
        assert!(is_opt_out("  stop! ", &[]));
        assert!(is_opt_out("Opt-out", &[]));
        assert!(is_opt_out("Stopp", &[]));
        assert!(is_opt_out("توقف", &[]));
        assert!(is_opt_out("बंद करो", &[]));
        assert!(is_opt_out("Arrêter.", &[]));
        assert!(!is_opt_out("can you stop by the shop?", &[]));
        assert!(!is_opt_out("", &[]));
        assert!(is_opt_out("no thanks", &["No thanks".to_owned()]));
    }
}
