//! The one authorization policy: every access to a patient's data asks
//! [`can`]. No handler checks roles by hand.

use super::{Actor, AppState, ServiceError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use store::entity::patients;

/// What an actor wants to do with a patient's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ReadGlucose,
    ReadInsulin,
    ReadSettings,
    ReadEvents,
    Upload,
    DeleteData,
}

/// Why access was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The patient's own data.
    Owner,
}

/// Decides whether `actor` may do `action` on `patient_id`'s data.
/// Today only the owner may; clinic and care-partner grants come with the
/// sharing feature and are decided here too.
pub async fn can(
    state: &AppState,
    actor: &Actor,
    _action: Action,
    patient_id: &str,
) -> Result<Option<Grant>, ServiceError> {
    let owned = patients::Entity::find_by_id(patient_id.to_string())
        .filter(patients::Column::UserId.eq(&actor.user.id))
        .one(&state.db)
        .await?;
    Ok(owned.map(|_| Grant::Owner))
}

/// Like [`can`], but a refusal is "not found" (no hint that the id exists).
pub async fn require(
    state: &AppState,
    actor: &Actor,
    action: Action,
    patient_id: &str,
) -> Result<Grant, ServiceError> {
    can(state, actor, action, patient_id).await?.ok_or(ServiceError::NotFound)
}

/// The patient data space a user owns, if any.
pub async fn own_patient(state: &AppState, user_id: &str) -> Result<Option<patients::Model>, ServiceError> {
    Ok(patients::Entity::find()
        .filter(patients::Column::UserId.eq(user_id))
        .one(&state.db)
        .await?)
}
