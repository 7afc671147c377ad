//! The signed-in user's own profile and settings.

use super::{Actor, AppState, ServiceError, policy};
use crate::model::{Me, MePatch};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::entity::{patients, users};

pub async fn get(state: &AppState, actor: &Actor) -> Result<Me, ServiceError> {
    let patient = policy::own_patient(state, &actor.user.id).await?;
    Ok(to_me(&actor.user, patient.map(|p| p.id)))
}

pub fn to_me(u: &users::Model, patient_id: Option<String>) -> Me {
    Me {
        id: u.id.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        role: u.role.clone(),
        glucose_unit: u.glucose_unit.clone(),
        time_zone: u.time_zone.clone(),
        patient_id,
        email_verified: u.email_verified_ms.is_some(),
        language: u.language.clone(),
    }
}

/// Validates and applies a settings change; the patient's data space follows
/// the user's zone and name.
pub async fn update(state: &AppState, actor: &Actor, patch: MePatch, now: i64) -> Result<Me, ServiceError> {
    let mut m: users::ActiveModel = actor.user.clone().into();
    if let Some(name) = &patch.display_name {
        m.display_name = Set(super::auth::clean_display_name(name)?);
    }
    if let Some(unit) = &patch.glucose_unit {
        let u: therapy::GlucoseUnit = unit
            .parse()
            .map_err(|_| ServiceError::bad("glucose_unit", "Glucose unit must be \"mg/dL\" or \"mmol/L\"."))?;
        m.glucose_unit = Set(u.label().to_string());
    }
    if let Some(tz) = &patch.time_zone {
        let zone = therapy::time::parse_zone(tz.trim()).ok_or_else(|| {
            ServiceError::bad("time_zone", format!("Unknown time zone {tz:?}: use an IANA name such as Europe/Berlin."))
        })?;
        m.time_zone = Set(zone.name().to_string());
    }
    if let Some(l) = &patch.language {
        m.language = Set(Some(parse_language(l)?.code().to_string()));
    }
    m.updated_ms = Set(now);
    let txn = state.db.begin().await?;
    let user = m.update(&txn).await?;
    let patient = policy::own_patient(state, &user.id).await?;
    if let Some(p) = &patient {
        let mut pm: patients::ActiveModel = p.clone().into();
        pm.display_name = Set(user.display_name.clone());
        pm.time_zone = Set(user.time_zone.clone());
        pm.update(&txn).await?;
        if p.time_zone != user.time_zone {
            // Local days moved: rebuild the per-day sums in the new zone.
            store::entity::daily_glucose::Entity::delete_many()
                .filter(store::entity::daily_glucose::Column::PatientId.eq(&p.id))
                .exec(&txn)
                .await?;
            super::daily::refresh_in(&txn, &p.id, None).await?;
        }
    }
    txn.commit().await?;
    Ok(to_me(&user, patient.map(|p| p.id)))
}

/// A language code from a form or the API, checked.
pub fn parse_language(code: &str) -> Result<crate::i18n::Lang, ServiceError> {
    crate::i18n::Lang::parse(code)
        .filter(|l| l.code() == code.trim().to_ascii_lowercase())
        .ok_or_else(|| ServiceError::bad("language", "Language must be one of en, es, fr, de."))
}
