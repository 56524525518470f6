//! Properties of the vault over generated secrets, slots, keys and bytes: what is sealed opens in
//! its own slot under a key the vault holds, and nothing else opens, whatever bytes are handed in.

use proptest::prelude::*;
use secrecy::ExposeSecret;
use wagate::vault::{SecretSlot, Vault, VaultError};

/// Places secrets are stored in; names are code constants, so they come from a fixed list.
const PLACES: &[(&str, &str)] = &[
    ("connections", "access_token"),
    ("connections", "app_secret"),
    ("connections", "verify_token"),
    ("assistant_settings", "api_key"),
    ("webhook_endpoints", "secret"),
];

/// Where the version, key id and nonce end in a sealed secret: `version | key id (8) | nonce (12)`.
const VERSION_END: usize = 1;
const KEY_ID_END: usize = VERSION_END + 8;
const HEADER_END: usize = KEY_ID_END + 12;

fn key() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn slot_parts() -> impl Strategy<Value = (usize, String)> {
    (0..PLACES.len(), ".{0,40}")
}

fn slot(parts: &(usize, String)) -> SecretSlot<'_> {
    let (table, column) = PLACES[parts.0];
    SecretSlot::new(table, column, &parts.1)
}

proptest! {
    #[test]
    fn any_secret_sealed_in_a_slot_opens_there_to_the_same_text(
        master in key(),
        parts in slot_parts(),
        secret in any::<String>(),
    ) {
        let vault = Vault::new(&master, &[]);
        let sealed = vault.seal(slot(&parts), &secret);
        let opened = vault.open(slot(&parts), &sealed).unwrap();
        prop_assert_eq!(opened.expose_secret(), secret.as_str());
        // The ciphertext never carries the plaintext itself (for secrets long enough to tell).
        if secret.len() >= 8 {
            prop_assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }

    #[test]
    fn a_secret_sealed_before_a_rotation_still_opens_with_the_previous_key(
        old in key(),
        new in key(),
        parts in slot_parts(),
        secret in any::<String>(),
    ) {
        prop_assume!(old != new);
        let sealed = Vault::new(&old, &[]).seal(slot(&parts), &secret);
        let rotated = Vault::new(&new, &[old]);
        prop_assert!(rotated.is_sealed_with_old_key(&sealed));
        let opened = rotated.open(slot(&parts), &sealed).unwrap();
        prop_assert_eq!(opened.expose_secret(), secret.as_str());
    }

    #[test]
    fn any_flipped_bit_of_a_sealed_secret_is_rejected(
        master in key(),
        parts in slot_parts(),
        secret in ".{0,64}",
        bit in any::<prop::sample::Index>(),
    ) {
        let vault = Vault::new(&master, &[]);
        let mut sealed = vault.seal(slot(&parts), &secret);
        let at = bit.index(sealed.len() * 8);
        sealed[at / 8] ^= 1 << (at % 8);
        let outcome = vault.open(slot(&parts), &sealed);
        let byte = at / 8;
        match outcome {
            Ok(_) => prop_assert!(false, "a secret with bit {} flipped opened", at),
            Err(VaultError::Malformed) => prop_assert!(byte < VERSION_END, "byte {}", byte),
            Err(VaultError::UnknownKey(_)) => {
                prop_assert!((VERSION_END..KEY_ID_END).contains(&byte), "byte {}", byte)
            }
            Err(VaultError::Rejected) => prop_assert!(byte >= KEY_ID_END, "byte {}", byte),
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }

    #[test]
    fn a_secret_opened_in_another_slot_is_rejected(
        master in key(),
        parts in slot_parts(),
        other in slot_parts(),
        secret in ".{0,64}",
    ) {
        prop_assume!(parts != other);
        let vault = Vault::new(&master, &[]);
        let sealed = vault.seal(slot(&parts), &secret);
        prop_assert!(matches!(vault.open(slot(&other), &sealed), Err(VaultError::Rejected)));
    }

    #[test]
    fn a_secret_opened_by_a_vault_without_its_key_is_rejected(
        master in key(),
        other in key(),
        parts in slot_parts(),
        secret in ".{0,64}",
    ) {
        prop_assume!(master != other);
        let sealed = Vault::new(&master, &[]).seal(slot(&parts), &secret);
        let stranger = Vault::new(&other, &[]);
        prop_assert!(matches!(
            stranger.open(slot(&parts), &sealed),
            Err(VaultError::UnknownKey(_))
        ));
    }

    #[test]
    fn arbitrary_bytes_never_open_and_never_panic(
        master in key(),
        parts in slot_parts(),
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let vault = Vault::new(&master, &[]);
        prop_assert!(vault.open(slot(&parts), &bytes).is_err());
        let _ = vault.is_sealed_with_old_key(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_open(
        master in key(),
        parts in slot_parts(),
        tail in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        // The version and key id of a real secret, so the bytes reach the cipher itself.
        let vault = Vault::new(&master, &[]);
        let real = vault.seal(slot(&parts), "");
        let mut forged = real[..KEY_ID_END].to_vec();
        forged.extend_from_slice(&tail);
        let outcome = vault.open(slot(&parts), &forged);
        if forged.len() < HEADER_END + 16 {
            prop_assert!(matches!(outcome, Err(VaultError::Malformed)));
        } else {
            prop_assert!(matches!(outcome, Err(VaultError::Rejected)));
        }
    }
}
