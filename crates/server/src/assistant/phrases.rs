//! The assistant's own sentences, in every language it speaks: the polite fallback when nothing
//! better is known, and the note that a person will take over.

use super::language::speakable;

/// When neither the model nor an FAQ entry has an answer.
pub fn fallback(language: &str) -> &'static str {
    match speakable(language) {
        "es" => {
            "Gracias por tu mensaje. No tengo una respuesta para eso ahora mismo; una persona de nuestro equipo te responderá pronto."
        }
        "pt" => {
            "Obrigado pela sua mensagem. Não tenho uma resposta para isso agora; uma pessoa da nossa equipe vai responder em breve."
        }
        "fr" => {
            "Merci pour votre message. Je n'ai pas de réponse à cela pour le moment ; une personne de notre équipe vous répondra bientôt."
        }
        "de" => {
            "Danke für Ihre Nachricht. Darauf habe ich gerade keine Antwort; eine Person aus unserem Team meldet sich bald bei Ihnen."
        }
        "ar" => "شكرًا لرسالتك. ليس لدي إجابة على ذلك الآن؛ سيرد عليك أحد أعضاء فريقنا قريبًا.",
        "hi" => {
            "आपके संदेश के लिए धन्यवाद। अभी मेरे पास इसका उत्तर नहीं है; हमारी टीम का कोई व्यक्ति जल्द ही आपको जवाब देगा।"
        }
        "id" => {
            "Terima kasih atas pesan Anda. Saya belum punya jawaban untuk itu; seseorang dari tim kami akan segera membalas."
        }
        _ => {
            "Thanks for your message. I don't have an answer for that right now; a person from our team will reply soon."
        }
    }
}

/// When the customer asked for a person.
pub fn handing_off(language: &str) -> &'static str {
    match speakable(language) {
        "es" => "Entendido. Una persona de nuestro equipo continuará la conversación aquí.",
        "pt" => "Entendido. Uma pessoa da nossa equipe vai continuar a conversa aqui.",
        "fr" => "C'est noté. Une personne de notre équipe va poursuivre la conversation ici.",
        "de" => "Verstanden. Eine Person aus unserem Team übernimmt das Gespräch hier.",
        "ar" => "تم. سيتابع أحد أعضاء فريقنا المحادثة هنا.",
        "hi" => "ठीक है। हमारी टीम का कोई व्यक्ति यहीं बातचीत जारी रखेगा।",
        "id" => "Baik. Seseorang dari tim kami akan melanjutkan percakapan di sini.",
        _ => "Understood. A person from our team will continue the conversation here.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::language::SUPPORTED;

    #[test]
    fn every_language_has_its_own_sentences() {
        let mut seen = std::collections::HashSet::new();
        for language in SUPPORTED {
            assert!(
                seen.insert(fallback(language)),
                "{language} repeats another's fallback"
            );
            assert_ne!(handing_off(language), fallback(language));
        }
    }
}
