//! `AccessStore`: ingest keys and API tokens found by their hashes and revoked once, and the
//! admin token's hash.

use leadrelay_core::access::Scope;
use leadrelay_core::storage::{ApiToken, IngestKey};
use leadrelay_core::{IngestKeyId, OfferId, TokenId};

use super::*;

/// A hex string of SHA-256 length, distinct for every `seed`.
fn hash_of(seed: &str) -> String {
    let hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>64}")
}

fn ingest_key(p: &PublisherId, offer: Option<OfferId>, at: Timestamp) -> IngestKey {
    let id = IngestKeyId::generate(at);
    IngestKey { key_hash: hash_of(id.as_str()), id, publisher: p.clone(), offer, created_at: at, revoked_at: None }
}

fn api_token(p: Option<&PublisherId>, scopes: &[Scope], at: Timestamp) -> ApiToken {
    let id = TokenId::generate(at);
    ApiToken {
        token_hash: hash_of(id.as_str()),
        id,
        publisher: p.cloned(),
        scopes: scopes.to_vec(),
        created_at: at,
        revoked_at: None,
    }
}

/// Ingest keys are found by their hash, bound to an offer or not; an unknown hash is `NotFound`.
pub async fn an_ingest_key_is_found_by_its_hash(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let any_offer = ingest_key(&p, None, T0);
    let bound = ingest_key(&p, Some(OfferId::parse("contoso.crm").unwrap()), T0.plus(secs(1)));
    s.create_ingest_key(&any_offer).await.unwrap();
    s.create_ingest_key(&bound).await.unwrap();
    assert_eq!(s.find_ingest_key(&any_offer.key_hash).await.unwrap(), any_offer);
    assert_eq!(s.find_ingest_key(&bound.key_hash).await.unwrap(), bound);
    assert_not_found(s.find_ingest_key(&hash_of("never issued")).await);
}

/// API tokens are found by their hash with their scopes, publisher tokens and marketplace
/// tokens (bound to no publisher) alike; an unknown hash is `NotFound`.
pub async fn an_api_token_is_found_by_its_hash(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let publisher_token = api_token(Some(&p), &[Scope::Read, Scope::Write, Scope::Admin], T0);
    let marketplace_token = api_token(None, &[Scope::Marketplace], T0.plus(secs(1)));
    s.create_api_token(&publisher_token).await.unwrap();
    s.create_api_token(&marketplace_token).await.unwrap();
    assert_eq!(s.find_api_token(&publisher_token.token_hash).await.unwrap(), publisher_token);
    assert_eq!(s.find_api_token(&marketplace_token.token_hash).await.unwrap(), marketplace_token);
    assert_not_found(s.find_api_token(&hash_of("never issued")).await);
}

/// A second key or token with a taken id or a taken hash is a `Conflict`: one hash always
/// names one credential.
pub async fn a_taken_credential_id_or_hash_is_a_conflict(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let key = ingest_key(&p, None, T0);
    s.create_ingest_key(&key).await.unwrap();
    assert_conflict(s.create_ingest_key(&IngestKey { id: IngestKeyId::generate(T0), ..key.clone() }).await);
    assert_conflict(s.create_ingest_key(&IngestKey { key_hash: hash_of("another key"), ..key.clone() }).await);
    assert_not_found(s.find_ingest_key(&hash_of("another key")).await);

    let token = api_token(Some(&p), &[Scope::Read], T0);
    s.create_api_token(&token).await.unwrap();
    assert_conflict(s.create_api_token(&ApiToken { id: TokenId::generate(T0), ..token.clone() }).await);
    assert_conflict(s.create_api_token(&ApiToken { token_hash: hash_of("another token"), ..token.clone() }).await);
    assert_not_found(s.find_api_token(&hash_of("another token")).await);
    assert_eq!(s.find_api_token(&token.token_hash).await.unwrap(), token);
}

/// A revoked key is still found (the caller refuses it), and revoking it again keeps the time
/// of the first revocation.
pub async fn revoking_an_ingest_key_twice_keeps_the_first_time(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let key = ingest_key(&p, None, T0);
    s.create_ingest_key(&key).await.unwrap();
    let (t1, t2) = (T0.plus(secs(60)), T0.plus(secs(120)));
    s.revoke_ingest_key(&p, &key.id, t1).await.unwrap();
    s.revoke_ingest_key(&p, &key.id, t2).await.unwrap();
    assert_eq!(s.find_ingest_key(&key.key_hash).await.unwrap(), IngestKey { revoked_at: Some(t1), ..key });
}

/// A revoked token is still found (the caller refuses it), and revoking it again keeps the time
/// of the first revocation.
pub async fn revoking_an_api_token_twice_keeps_the_first_time(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let token = api_token(Some(&p), &[Scope::Ingest], T0);
    s.create_api_token(&token).await.unwrap();
    let (t1, t2) = (T0.plus(secs(60)), T0.plus(secs(120)));
    s.revoke_api_token(&p, &token.id, t1).await.unwrap();
    s.revoke_api_token(&p, &token.id, t2).await.unwrap();
    assert_eq!(s.find_api_token(&token.token_hash).await.unwrap(), ApiToken { revoked_at: Some(t1), ..token });
}

/// A publisher cannot revoke another publisher's key or token (`NotFound`, and it stays
/// valid), nor one that does not exist.
pub async fn a_credential_of_another_publisher_cannot_be_revoked(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let key = ingest_key(&other, None, T0);
    let token = api_token(Some(&other), &[Scope::Read], T0);
    s.create_ingest_key(&key).await.unwrap();
    s.create_api_token(&token).await.unwrap();
    assert_not_found(s.revoke_ingest_key(&p, &key.id, T0).await);
    assert_not_found(s.revoke_api_token(&p, &token.id, T0).await);
    assert_not_found(s.revoke_ingest_key(&p, &IngestKeyId::generate(T0), T0).await);
    assert_not_found(s.revoke_api_token(&p, &TokenId::generate(T0), T0).await);
    assert_eq!(s.find_ingest_key(&key.key_hash).await.unwrap().revoked_at, None);
    assert_eq!(s.find_api_token(&token.token_hash).await.unwrap().revoked_at, None);
}

/// The admin token's hash is unset on a new database; setting it only if unset stores the
/// first and keeps it against a second, and setting it unconditionally replaces it.
pub async fn the_admin_token_hash_is_unset_until_it_is_first_set(s: Arc<dyn Storage>) {
    assert_eq!(s.admin_token_hash().await.unwrap(), None);
    let (first, second, rotated) = (hash_of("first"), hash_of("second"), hash_of("rotated"));
    assert!(s.set_admin_token_hash(&first, true).await.unwrap(), "the first hash is stored");
    assert_eq!(s.admin_token_hash().await.unwrap(), Some(first.clone()));
    assert!(!s.set_admin_token_hash(&second, true).await.unwrap(), "an existing hash is kept");
    assert_eq!(s.admin_token_hash().await.unwrap(), Some(first));
    assert!(s.set_admin_token_hash(&rotated, false).await.unwrap(), "a rotation replaces it");
    assert_eq!(s.admin_token_hash().await.unwrap(), Some(rotated));
}
