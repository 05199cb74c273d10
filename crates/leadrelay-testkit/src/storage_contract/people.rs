//! `PeopleStore`: the users of a publisher's team, found by id and by address, one address to
//! one user across publishers, invitations that work once and expire, and sessions that end.

use leadrelay_core::UserId;
use leadrelay_core::sales::{Role, Session, User};

use super::*;

/// A hex string of SHA-256 length, distinct for every `seed`.
fn hash_of(seed: &str) -> String {
    let hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>64}")
}

/// A user of `p` with a password, created at `at`.
fn user(p: &PublisherId, email: &str, role: Role, at: Timestamp) -> User {
    User {
        id: UserId::generate(at),
        publisher: p.clone(),
        email: email.to_owned(),
        name: format!("Name of {email}"),
        role,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned()),
        invite_hash: None,
        invite_expires_at: None,
        created_at: at,
    }
}

/// A user with an open invitation (no password yet) that ends at `expires_at`.
fn invited(p: &PublisherId, email: &str, invite: &str, expires_at: Timestamp) -> User {
    User {
        password_hash: None,
        invite_hash: Some(hash_of(invite)),
        invite_expires_at: Some(expires_at),
        ..user(p, email, Role::Member, T0)
    }
}

fn session(u: &User, token: &str, at: Timestamp, lasts: Duration) -> Session {
    Session { token_hash: hash_of(token), user: u.id.clone(), created_at: at, expires_at: at.plus(lasts) }
}

/// A user is read back as created by id and by address; a publisher's users are listed
/// oldest first without another publisher's; unknown ids and addresses are `NotFound`.
pub async fn a_user_is_read_back_by_id_and_address_and_listed_with_their_publisher(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let ana = user(&p, "ana@contoso.com", Role::Admin, T0);
    let ben = invited(&p, "ben@contoso.com", "ben's invitation", T0.plus(secs(3600)));
    let ben = User { created_at: T0.plus(secs(1)), ..ben };
    let theirs = user(&other, "cy@fabrikam.com", Role::Viewer, T0);
    for u in [&ben, &ana, &theirs] {
        s.create_user(u).await.unwrap();
    }
    assert_eq!(s.get_user(&ana.id).await.unwrap(), ana);
    assert_eq!(s.get_user(&ben.id).await.unwrap(), ben, "an open invitation is kept with the user");
    assert_eq!(s.find_user_by_email("ana@contoso.com").await.unwrap(), ana);
    assert_eq!(s.list_users(&p).await.unwrap(), vec![ana.clone(), ben.clone()], "oldest first, only contoso's");
    assert_eq!(s.list_users(&other).await.unwrap(), vec![theirs]);
    assert_not_found(s.get_user(&UserId::generate(T0)).await);
    assert_not_found(s.find_user_by_email("nobody@contoso.com").await);
    assert_not_found(s.list_users(&PublisherId::parse("unknown").unwrap()).await);
}

/// An address belongs to one user whatever the publisher: a second user with it (or with a
/// taken id) is a `Conflict`, and the first stays as it was.
pub async fn a_taken_address_is_a_conflict_across_publishers(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let ana = user(&p, "ana@contoso.com", Role::Admin, T0);
    s.create_user(&ana).await.unwrap();
    assert_conflict(s.create_user(&user(&p, "ana@contoso.com", Role::Viewer, T0)).await);
    assert_conflict(s.create_user(&user(&other, "ana@contoso.com", Role::Admin, T0)).await);
    assert_conflict(s.create_user(&User { email: "another@contoso.com".into(), ..ana.clone() }).await);
    assert_eq!(s.find_user_by_email("ana@contoso.com").await.unwrap(), ana);
    assert_not_found(s.find_user_by_email("another@contoso.com").await);
    assert_eq!(s.list_users(&other).await.unwrap(), Vec::<User>::new());
}

/// A user of a publisher that does not exist is `NotFound`, and nothing is stored.
pub async fn a_user_of_an_unknown_publisher_is_not_found(s: Arc<dyn Storage>) {
    let unknown = PublisherId::parse("unknown").unwrap();
    let u = user(&unknown, "ana@contoso.com", Role::Admin, T0);
    assert_not_found(s.create_user(&u).await);
    assert_not_found(s.get_user(&u.id).await);
    assert_not_found(s.find_user_by_email("ana@contoso.com").await);
}

/// An invitation sets the password once and closes: the same token is refused the second
/// time, and a token whose invitation expired is refused and leaves the user without one.
pub async fn an_invitation_is_accepted_once_and_refused_after_it_expires(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let until = T0.plus(secs(7 * 86_400));
    let ben = invited(&p, "ben@contoso.com", "ben's invitation", until);
    let cy = invited(&p, "cy@contoso.com", "cy's invitation", until);
    s.create_user(&ben).await.unwrap();
    s.create_user(&cy).await.unwrap();

    let accepted = s.accept_invitation(&hash_of("ben's invitation"), "phc of ben's password", T0.plus(secs(60))).await;
    let accepted = accepted.unwrap();
    assert_eq!(accepted.id, ben.id);
    assert_eq!(accepted.password_hash.as_deref(), Some("phc of ben's password"));
    assert_eq!((accepted.invite_hash.as_deref(), accepted.invite_expires_at), (None, None), "the invitation is closed");
    assert_eq!(s.get_user(&ben.id).await.unwrap(), accepted);
    assert_not_found(s.accept_invitation(&hash_of("ben's invitation"), "another", T0.plus(secs(61))).await);
    assert_eq!(s.get_user(&ben.id).await.unwrap().password_hash.as_deref(), Some("phc of ben's password"));

    assert_not_found(s.accept_invitation(&hash_of("cy's invitation"), "phc", until).await);
    assert_not_found(s.accept_invitation(&hash_of("cy's invitation"), "phc", until.plus(secs(1))).await);
    assert_eq!(s.get_user(&cy.id).await.unwrap().password_hash, None, "an expired invitation sets nothing");
    assert_not_found(s.accept_invitation(&hash_of("never issued"), "phc", T0).await);
}

/// A session is found with its user until it expires, then no more; deleting it ends it at
/// once, and deleting an unknown one is no error. A taken hash is a `Conflict`; a session of
/// an unknown user is `NotFound`.
pub async fn a_session_is_found_until_it_expires_or_is_deleted(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let ana = user(&p, "ana@contoso.com", Role::Member, T0);
    s.create_user(&ana).await.unwrap();
    let hours = secs(12 * 3600);
    let first = session(&ana, "first", T0, hours);
    let second = session(&ana, "second", T0.plus(secs(1)), hours);
    s.create_session(&first).await.unwrap();
    s.create_session(&second).await.unwrap();

    let (found, who) = s.find_session(&first.token_hash, T0.plus(secs(10))).await.unwrap();
    assert_eq!((found, who), (first.clone(), ana.clone()));
    assert_eq!(s.find_session(&first.token_hash, first.expires_at.minus(millis(1))).await.unwrap().0, first);
    assert_not_found(s.find_session(&first.token_hash, first.expires_at).await);
    assert_not_found(s.find_session(&hash_of("never issued"), T0).await);

    s.delete_session(&second.token_hash).await.unwrap();
    assert_not_found(s.find_session(&second.token_hash, T0.plus(secs(10))).await);
    s.delete_session(&second.token_hash).await.unwrap();
    s.delete_session(&hash_of("never issued")).await.unwrap();
    assert_eq!(s.find_session(&first.token_hash, T0.plus(secs(10))).await.unwrap().0, first, "the other lives on");

    assert_conflict(s.create_session(&session(&ana, "first", T0.plus(secs(2)), hours)).await);
    let stranger = User { id: UserId::generate(T0), ..ana.clone() };
    assert_not_found(s.create_session(&session(&stranger, "stranger", T0, hours)).await);
    // A sign-in after the first session ended may clear it away; either way it stays ended.
    let later = session(&ana, "later", first.expires_at.plus(secs(1)), hours);
    s.create_session(&later).await.unwrap();
    assert_not_found(s.find_session(&first.token_hash, later.created_at).await);
    assert_eq!(s.find_session(&later.token_hash, later.created_at).await.unwrap().0, later);
}

/// Of many concurrent creates of users with one address (one per task, each its own id and
/// some of other publishers), exactly one succeeds and the others are `Conflict`.
pub async fn concurrent_creates_of_one_address_let_exactly_one_succeed(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let results = concurrently(RACERS, |i| {
        let s = Arc::clone(&s);
        let owner = if i % 2 == 0 { p.clone() } else { other.clone() };
        async move {
            let u = user(&owner, "ana@contoso.com", Role::Member, T0.plus(millis(i as u64)));
            let r = s.create_user(&u).await;
            (u, r)
        }
    })
    .await;
    let winners: Vec<&User> = results.iter().filter(|(_, r)| r.is_ok()).map(|(u, _)| u).collect();
    assert_eq!(winners.len(), 1, "exactly one create succeeds");
    for (_, r) in &results {
        assert!(matches!(r, Ok(()) | Err(StorageError::Conflict)), "{r:?}");
    }
    assert_eq!(&s.find_user_by_email("ana@contoso.com").await.unwrap(), winners[0]);
    let listed = s.list_users(&p).await.unwrap().len() + s.list_users(&other).await.unwrap().len();
    assert_eq!(listed, 1);
}
