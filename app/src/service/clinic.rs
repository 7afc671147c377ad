//! The clinician's view of their clinics (roster only; patient data needs a
//! grant, decided by the policy).

use super::{Actor, AppState, ServiceError};
use crate::model::{ClinicPatientRow, ClinicSummary};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use store::entity::{clinic_members, clinics, patient_records};

pub async fn my_clinics(state: &AppState, actor: &Actor) -> Result<Vec<ClinicSummary>, ServiceError> {
    let memberships = clinic_members::Entity::find()
        .filter(clinic_members::Column::UserId.eq(&actor.user.id))
        .all(&state.db)
        .await?;
    if memberships.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = memberships.iter().map(|m| m.clinic_id.clone()).collect();
    let clinic_rows = clinics::Entity::find()
        .filter(clinics::Column::Id.is_in(ids.clone()))
        .order_by_asc(clinics::Column::Name)
        .all(&state.db)
        .await?;
    let records = patient_records::Entity::find()
        .filter(patient_records::Column::ClinicId.is_in(ids))
        .order_by_asc(patient_records::Column::Name)
        .all(&state.db)
        .await?;
    Ok(clinic_rows
        .into_iter()
        .map(|c| ClinicSummary {
            role: memberships
                .iter()
                .find(|m| m.clinic_id == c.id)
                .map(|m| m.role.clone())
                .unwrap_or_default(),
            patients: records
                .iter()
                .filter(|r| r.clinic_id == c.id)
                .map(|r| ClinicPatientRow { record_id: r.id.clone(), name: r.name.clone(), linked: r.linked_user != 0 })
                .collect(),
            id: c.id,
            name: c.name,
        })
        .collect())
}
