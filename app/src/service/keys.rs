//! Key rotation for sealed fields (`diabase keys rotate`): every sealed
//! value is opened with the key ring and sealed again under its first key,
//! and the MRN lookup index is recomputed, in one transaction.

use super::ServiceError;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::crypto::FieldCipher;
use store::entity::{patient_records, patients, totp};

/// Re-seals every sealed value under `ring`'s first key; returns how many
/// values were written. A value that cannot be opened stops the rotation
/// (nothing is written): the ring lacks a key that sealed it.
pub async fn reseal_all(db: &sea_orm::DatabaseConnection, ring: &FieldCipher) -> Result<u64, ServiceError> {
    let open =
        |v: &str| ring.open(v).map_err(|e| ServiceError::Internal(format!("a sealed value cannot be opened: {e}")));
    let txn = db.begin().await?;
    let mut n = 0u64;
    for r in patient_records::Entity::find().all(&txn).await? {
        let name = open(&r.name)?;
        let birth = r.birth_date.as_deref().map(open).transpose()?;
        let mrn = r.mrn.as_deref().map(open).transpose()?;
        n += 1 + u64::from(birth.is_some()) + u64::from(mrn.is_some());
        let mut m: patient_records::ActiveModel = r.clone().into();
        m.name = Set(ring.seal(&name));
        m.birth_date = Set(birth.as_deref().map(|b| ring.seal(b)));
        m.mrn_index = Set(mrn.as_deref().map(|x| ring.index(&r.clinic_id, x)));
        m.mrn = Set(mrn.as_deref().map(|x| ring.seal(x)));
        m.update(&txn).await?;
    }
    // Custodial data spaces carry the record's name.
    for p in patients::Entity::find().filter(patients::Column::UserId.is_null()).all(&txn).await? {
        let name = open(&p.display_name)?;
        let mut m: patients::ActiveModel = p.into();
        m.display_name = Set(ring.seal(&name));
        m.update(&txn).await?;
        n += 1;
    }
    // Two-factor secrets.
    for t in totp::Entity::find().all(&txn).await? {
        let secret = open(&t.secret)?;
        let mut m: totp::ActiveModel = t.into();
        m.secret = Set(ring.seal(&secret));
        m.update(&txn).await?;
        n += 1;
    }
    // Queued mail not sent yet (sent and given-up rows hold an empty body).
    for q in store::entity::mail_queue::Entity::find()
        .filter(store::entity::mail_queue::Column::Body.ne(""))
        .all(&txn)
        .await?
    {
        let to = open(&q.recipient)?;
        let body = open(&q.body)?;
        let mut m: store::entity::mail_queue::ActiveModel = q.into();
        m.recipient = Set(ring.seal(&to));
        m.body = Set(ring.seal(&body));
        m.update(&txn).await?;
        n += 2;
    }
    txn.commit().await?;
    Ok(n)
}
