//! sea-orm entities, one module per table (the migration SQL is the truth).
#![allow(clippy::all)]

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod users {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub email: String,
        pub password_hash: String,
        pub display_name: String,
        pub role: String,
        pub glucose_unit: String,
        pub time_zone: String,
        pub created_ms: i64,
        pub updated_ms: i64,
        pub password_changed_ms: i64,
        /// When the user confirmed the address (from the emailed link); `None` until then.
        pub email_verified_ms: Option<i64>,
        /// The interface language chosen (`en`, `es`, `fr`, `de`); `None`: the browser's.
        pub language: Option<String>,
    }
    no_relations!();
}

pub mod patients {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "patients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: Option<String>,
        pub display_name: String,
        pub time_zone: String,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod sessions {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub user_id: String,
        pub created_ms: i64,
        pub last_seen_ms: i64,
        pub expires_ms: i64,
        pub user_agent: Option<String>,
        pub ip: Option<String>,
        /// When this session's password (or passkey) was last checked.
        pub auth_ms: i64,
    }
    no_relations!();
}

pub mod api_tokens {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub name: String,
        pub token_hash: String,
        pub created_ms: i64,
        pub last_used_ms: Option<i64>,
        pub expires_ms: Option<i64>,
        pub revoked_ms: Option<i64>,
        /// `full`, or a comma list of `read:glucose`, `read:all`, `upload`.
        pub scopes: String,
    }
    no_relations!();
}

pub mod rate_limits {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rate_limits")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub bucket: String,
        pub window_start_ms: i64,
        pub hits: i32,
    }
    no_relations!();
}

pub mod clinics {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinics")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub created_ms: i64,
        /// Members must have two-factor authentication on to open the clinic.
        pub require_2fa: bool,
        /// The code patients enter to share with the clinic (`XXXX-XXXX-XXXX`).
        pub share_code: Option<String>,
    }
    no_relations!();
}

pub mod clinic_members {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinic_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub clinic_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub role: String,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod patient_records {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "patient_records")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub clinic_id: String,
        pub patient_id: String,
        pub name: String,
        pub birth_date: Option<String>,
        pub mrn: Option<String>,
        pub linked_user: i32,
        pub created_ms: i64,
        pub mrn_index: Option<String>,
        pub grant_id: Option<String>,
        pub created_by: Option<String>,
        pub link_state: String,
    }
    no_relations!();
}

pub mod devices {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "devices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub patient_id: String,
        pub manufacturer: String,
        pub model: String,
        pub serial: String,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod raw_blobs {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "raw_blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sha256: String,
        pub size: i64,
        pub bytes: Vec<u8>,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod uploads {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "uploads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub patient_id: String,
        pub uploaded_by: Option<String>,
        pub source: String,
        pub format: String,
        pub file_name: Option<String>,
        pub blob_sha256: Option<String>,
        pub device_id: Option<String>,
        pub time_zone: String,
        pub clock_offset_s: i64,
        pub counts_json: String,
        pub duplicates: i64,
        pub rejected: i64,
        pub first_ms: Option<i64>,
        pub last_ms: Option<i64>,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod glucose {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "glucose")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub patient_id: String,
        pub device_id: Option<String>,
        pub upload_id: Option<String>,
        pub kind: String,
        pub bg_source: Option<String>,
        pub source_rank: i16,
        pub time_ms: i64,
        pub device_time: String,
        pub time_zone: String,
        pub clock_offset_s: i64,
        pub value_mg_dl: i32,
        pub trend: Option<String>,
        pub out_of_range: Option<String>,
        pub dedup: String,
    }
    no_relations!();
}

pub mod therapy_events {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "therapy_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub patient_id: String,
        pub device_id: Option<String>,
        pub upload_id: Option<String>,
        pub kind: String,
        pub source_rank: i16,
        pub time_ms: i64,
        pub device_time: String,
        pub time_zone: String,
        pub clock_offset_s: i64,
        pub amount: Option<f64>,
        pub duration_min: Option<i32>,
        pub record_json: String,
        pub dedup: String,
    }
    no_relations!();
}

pub mod audit_log {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub at_ms: i64,
        pub actor_user_id: Option<String>,
        pub patient_id: Option<String>,
        pub action: String,
        pub detail: String,
        pub ip: Option<String>,
        pub prev_hash: String,
        pub hash: String,
    }
    no_relations!();
}

/// The audit log's sealed head (one row, id 1): see `audit`.
pub mod audit_head {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_head")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub count: i64,
        pub last_seq: i64,
        pub last_hash: String,
        pub mac: String,
    }
    no_relations!();
}

pub mod nightscout_sites {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nightscout_sites")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: String,
        pub slug: String,
        pub secret_sha1: String,
        pub token_hash: String,
        pub jwt_key: String,
        pub created_ms: i64,
        pub rotated_ms: i64,
        pub read_token_hash: Option<String>,
    }
    no_relations!();
}

pub mod nightscout_docs {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nightscout_docs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub patient_id: String,
        pub collection: String,
        pub ns_id: String,
        pub identifier: Option<String>,
        pub dedup: Option<String>,
        pub kind: Option<String>,
        pub date_ms: i64,
        pub doc_json: String,
        pub created_ms: i64,
        pub modified_ms: i64,
        pub deleted_ms: Option<i64>,
    }
    no_relations!();
}

pub mod grants {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "grants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub patient_id: String,
        pub grantee_clinic_id: Option<String>,
        pub grantee_user_id: Option<String>,
        pub record_id: Option<String>,
        pub invite_email: Option<String>,
        pub invite_token_hash: Option<String>,
        pub invite_expires_ms: Option<i64>,
        pub scopes: String,
        pub created_ms: i64,
        pub updated_ms: i64,
        pub accepted_ms: Option<i64>,
        pub expires_ms: Option<i64>,
        pub revoked_ms: Option<i64>,
        /// Set while the patient has paused all sharing.
        pub paused_ms: Option<i64>,
        /// A provider invited by their verified email: name and clinic as typed.
        pub provider_name: Option<String>,
        pub provider_clinic: Option<String>,
    }
    no_relations!();
}

pub mod link_codes {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "link_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub clinic_id: String,
        pub record_id: String,
        pub scopes: String,
        pub created_by: Option<String>,
        pub created_ms: i64,
        pub expires_ms: i64,
        pub used_ms: Option<i64>,
        pub used_by: Option<String>,
        pub outcome: Option<String>,
    }
    no_relations!();
}

pub mod clinic_invites {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clinic_invites")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub clinic_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub email: String,
        pub role: String,
        pub invited_by: Option<String>,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod upload_requests {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "upload_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub patient_id: String,
        pub clinic_id: String,
        pub record_id: String,
        pub requested_by: Option<String>,
        pub created_ms: i64,
        pub done_ms: Option<i64>,
    }
    no_relations!();
}

pub mod daily_glucose {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "daily_glucose")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: String,
        pub readings: i32,
        pub slots: i32,
        pub expected: i32,
        pub sum_mg_dl: i64,
        pub sum_sq_mg_dl: i64,
        pub very_low: i32,
        pub low: i32,
        pub in_range: i32,
        pub high: i32,
        pub very_high: i32,
    }
    no_relations!();
}

pub mod totp {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "totp")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        /// Sealed with the field cipher.
        pub secret: String,
        pub confirmed_ms: Option<i64>,
        pub last_step: i64,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod recovery_codes {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub user_id: String,
        pub used_ms: Option<i64>,
        pub created_ms: i64,
    }
    no_relations!();
}

pub mod password_resets {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "password_resets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub user_id: String,
        pub created_ms: i64,
        pub expires_ms: i64,
        pub used_ms: Option<i64>,
    }
    no_relations!();
}

pub mod passkeys {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "passkeys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        /// The WebAuthn user id (UUID) of the account.
        pub user_handle: String,
        /// base64url.
        pub credential_id: String,
        pub name: String,
        /// webauthn-rs' `Passkey`, JSON.
        pub passkey_json: String,
        pub created_ms: i64,
        pub last_used_ms: Option<i64>,
    }
    no_relations!();
}

pub mod webauthn_challenges {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webauthn_challenges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: Option<String>,
        /// `register` or `login`.
        pub kind: String,
        pub state_json: String,
        pub created_ms: i64,
        pub expires_ms: i64,
    }
    no_relations!();
}

pub mod email_verifications {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "email_verifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub user_id: String,
        pub email: String,
        pub created_ms: i64,
        pub expires_ms: i64,
        pub used_ms: Option<i64>,
    }
    no_relations!();
}

pub mod login_events {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub at_ms: i64,
        /// `password` or `passkey`.
        pub method: String,
        pub success: i32,
        pub new_device: i32,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
    }
    no_relations!();
}

pub mod known_devices {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "known_devices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub device_hash: String,
        pub first_ms: i64,
        pub last_ms: i64,
        pub user_agent: Option<String>,
    }
    no_relations!();
}

/// The durable mail queue (migration 0011): recipient and body sealed with
/// the field cipher; the body is blanked once the message left or was given up.
pub mod mail_queue {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_queue")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub recipient: String,
        pub subject: String,
        pub body: String,
        pub created_ms: i64,
        pub attempts: i32,
        pub next_attempt_ms: i64,
        pub claimed_until_ms: i64,
        pub sent_ms: Option<i64>,
        pub failed_ms: Option<i64>,
        pub last_error: Option<String>,
    }
    no_relations!();
}
