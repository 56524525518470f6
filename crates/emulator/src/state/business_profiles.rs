//! Operations on business profiles: the change a Graph `POST` makes, and the read and seed tests
//! use to see or set what Meta holds.

use super::EmulatorState;
use crate::business_profile::{BusinessProfile, ProfileChange};
use crate::error::EmulatorError;

impl EmulatorState {
    /// The number's profile as Meta holds it; `None` when the number is not registered.
    pub fn business_profile(&self, phone_number_id: &str) -> Option<BusinessProfile> {
        self.world()
            .phone_numbers
            .get(phone_number_id)
            .map(|n| n.business_profile.clone())
    }

    /// Replaces the number's whole profile without Meta's checks, for tests that start from one.
    pub fn set_business_profile(
        &self,
        phone_number_id: &str,
        profile: BusinessProfile,
    ) -> Result<(), EmulatorError> {
        let mut world = self.world();
        let number = world
            .phone_numbers
            .get_mut(phone_number_id)
            .ok_or_else(|| EmulatorError::UnknownPhoneNumber(phone_number_id.to_owned()))?;
        number.business_profile = profile;
        Ok(())
    }

    /// Applies a checked change; `false` when the number is not registered.
    pub(crate) fn change_business_profile(
        &self,
        phone_number_id: &str,
        change: ProfileChange,
    ) -> bool {
        match self.world().phone_numbers.get_mut(phone_number_id) {
            Some(number) => {
                number.business_profile.apply(change);
                true
            }
            None => false,
        }
    }
}
