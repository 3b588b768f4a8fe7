//! The subscriber's own pages, reached through their manage token: preferences and unsubscribe.

use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::client_ip::ClientIp;
use super::form::PageForm;
use super::{AppError, AppState};
use crate::digests::DigestItem;
use crate::digests::plan;
use crate::digests::read_back::{self, EditionSent};
use crate::domain::{ARXIV_CATEGORIES, PreferenceErrors, Preferences, PreferencesForm, WEEKDAYS};
use crate::store::examples::{self, ExampleRow};
use crate::store::library;
use crate::store::ratings::{self, RatedRow};
use crate::store::subscribers::{Status, SubscriberRow};
use crate::subscribers::manage;

/// The preferences page lists the papers sent in the last this many days, at most this many.
const SENT_DAYS: i32 = 30;
const SENT_SHOWN: i64 = 60;
/// Examples listed at most.
const EXAMPLES_SHOWN: i64 = 500;

#[derive(Template, WebTemplate)]
#[template(path = "pages/preferences.html")]
pub struct PreferencesPage {
    token: String,
    email: String,
    unsubscribed: bool,
    /// Mail to the address bounced: nothing is sent until they sign up again.
    bounced: bool,
    /// What the last change did (saved, examples added, a library read).
    notes: Notes,
    form: PreferencesForm,
    errors: PreferenceErrors,
    /// The live preview: the digest these preferences give from the latest paper day.
    preview: Option<Preview>,
    /// Papers sent lately, with the subscriber's ratings and the forms to change them.
    sent: Vec<SentPaper>,
    /// The subscriber's private feed, and the editions they were sent (with web copies).
    feed_url: String,
    history: Vec<EditionSent>,
    /// "Papers like these": liked, waiting for arXiv, or missing there.
    examples: Vec<ExampleRow>,
    /// The rating token: a liked example is removed as any 👍 is.
    rate_token: String,
    library: Option<library::Summary>,
}

/// What a change just did, said at the top of its section.
#[derive(Debug, Default)]
pub(super) struct Notes {
    pub saved: bool,
    pub examples: Option<ExamplesReport>,
    /// The library read (entries used), or why not.
    pub library: Option<Result<String, String>>,
}

/// What pasting examples did.
#[derive(Debug, Default)]
pub(super) struct ExamplesReport {
    /// Why nothing was added (too many), if so.
    pub error: Option<String>,
    pub added: usize,
    pub waiting: usize,
    /// (entry, reason) for entries not kept.
    pub rejected: Vec<(String, String)>,
}

/// A paper sent lately, as the preferences page lists it.
struct SentPaper {
    paper: RatedRow,
    /// `/rate/{token}/{arxiv_id}/`: the form actions end in up, down or clear.
    rate: String,
}

struct Preview {
    edition: String,
    items: Vec<DigestItem>,
}

impl PreferencesPage {
    fn categories(&self) -> &'static [(&'static str, &'static str)] {
        ARXIV_CATEGORIES
    }

    fn chose_category(&self, code: &str) -> bool {
        self.form.categories.iter().any(|c| c == code)
    }

    /// (value, label, selected) for the weekday select.
    fn weekdays(&self) -> Vec<(usize, &'static str, bool)> {
        WEEKDAYS
            .iter()
            .enumerate()
            .map(|(i, d)| (i + 1, *d, self.form.weekday == (i + 1).to_string()))
            .collect()
    }

    fn hours(&self) -> Vec<(u8, bool)> {
        (0..24).map(|h| (h, self.form.delivery_hour == h.to_string())).collect()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/unsubscribe.html")]
pub struct UnsubscribePage {
    token: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/unsubscribed.html")]
pub struct UnsubscribedPage {
    token: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/resubscribed.html")]
pub struct ResubscribedPage {
    token: String,
    /// Subscribed again; else the address must be confirmed anew (it bounced, complained or
    /// never completed the double opt-in).
    active: bool,
}

/// The subscriber behind a manage token, and the token their pages link to; anything
/// else is a 404. Tokens from before links were derived (in old emails) still work.
pub(super) async fn by_manage_link(app: &AppState, raw: &str) -> Result<Subscriber, AppError> {
    let row = crate::subscribers::manage::find(&app.db, &app.links, raw)
        .await
        .context("loading the subscriber")?;
    let row = row.ok_or(AppError::NotFound)?;
    let token = app.links.manage_token(&row.id);
    Ok(Subscriber { row, token })
}

/// A subscriber found through a manage link, with the (derived) token their pages link to.
pub(super) struct Subscriber {
    pub row: SubscriberRow,
    pub token: String,
}

async fn page(
    app: &AppState,
    Subscriber { row, token }: &Subscriber,
    prefs: &Preferences,
    form: PreferencesForm,
    errors: PreferenceErrors,
    notes: Notes,
) -> Result<PreferencesPage, AppError> {
    let taste = ratings::taste(&app.db, row.id).await.context("loading the subscriber's taste")?;
    let preview = plan::preview(&app.db, &app.editions, prefs, taste)
        .await
        .context("ranking the preview")?
        .map(|(edition, items)| Preview { edition: edition.title(), items });
    Ok(PreferencesPage {
        token: token.clone(),
        email: row.email.clone(),
        unsubscribed: row.status() == Status::Unsubscribed,
        bounced: row.status() == Status::Bounced,
        notes,
        form,
        errors,
        preview,
        sent: ratings::recently_sent(&app.db, row.id, SENT_DAYS, SENT_SHOWN)
            .await
            .context("loading the recently sent papers")?
            .into_iter()
            .map(|paper| SentPaper {
                rate: app.links.rate_path(&row.id, &paper.arxiv_id, ""),
                paper,
            })
            .collect(),
        feed_url: app.links.feed(&row.id, row.feed_generation),
        history: read_back::history(&app.db, &app.links, row.id)
            .await
            .context("loading the digest history")?,
        examples: examples::of_subscriber(&app.db, row.id, EXAMPLES_SHOWN)
            .await
            .context("loading the examples")?,
        rate_token: app.links.rate_token(&row.id),
        library: library::summary(&app.db, row.id).await.context("loading the library")?,
    })
}

pub async fn preferences(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<PreferencesPage, AppError> {
    let subscriber = by_manage_link(&app, &token).await?;
    let prefs = subscriber.row.preferences();
    let form = PreferencesForm::from_preferences(&prefs);
    page(&app, &subscriber, &prefs, form, PreferenceErrors::default(), Notes::default()).await
}

/// The preferences page after a change that is not the main form's, with its notes.
pub(super) async fn page_with(
    app: &AppState,
    subscriber: &Subscriber,
    notes: Notes,
) -> Result<PreferencesPage, AppError> {
    let prefs = subscriber.row.preferences();
    let form = PreferencesForm::from_preferences(&prefs);
    page(app, subscriber, &prefs, form, PreferenceErrors::default(), notes).await
}

#[tracing::instrument(name = "save_preferences", skip_all)]
pub async fn save_preferences(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    PageForm(form): PageForm<PreferencesForm>,
) -> Result<Response, AppError> {
    app.check_subscriber_rate(&ip)?;
    let subscriber = by_manage_link(&app, &token).await?;
    match form.parse() {
        Err(errors) => {
            let page = page(
                &app,
                &subscriber,
                &subscriber.row.preferences(),
                form,
                errors,
                Notes::default(),
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Ok(prefs) => {
            manage::save_preferences(
                &app.db,
                &app.embedder,
                &app.trainer,
                subscriber.row.id,
                &prefs,
            )
            .await
            .context("saving the preferences")?;
            let form = PreferencesForm::from_preferences(&prefs);
            let notes = Notes { saved: true, ..Notes::default() };
            let page =
                page(&app, &subscriber, &prefs, form, PreferenceErrors::default(), notes).await?;
            Ok(page.into_response())
        }
    }
}

pub async fn unsubscribe_page(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let Subscriber { row, token } = by_manage_link(&app, &token).await?;
    if row.status() == Status::Unsubscribed {
        return Ok(UnsubscribedPage { token }.into_response());
    }
    Ok(UnsubscribePage { token }.into_response())
}

/// Works for the form button and for RFC 8058 one-click posts
/// (`List-Unsubscribe=One-Click`) alike; the body is not needed. Always 200, never a redirect.
#[tracing::instrument(name = "unsubscribe", skip_all)]
pub async fn unsubscribe(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<UnsubscribedPage, AppError> {
    let Subscriber { row, token } = by_manage_link(&app, &token).await?;
    manage::unsubscribe(&app.db, row.id).await.context("unsubscribing")?;
    Ok(UnsubscribedPage { token })
}

#[tracing::instrument(name = "resubscribe", skip_all)]
pub async fn resubscribe(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Result<ResubscribedPage, AppError> {
    let Subscriber { row, token } = by_manage_link(&app, &token).await?;
    let active = manage::resubscribe(&app.db, row.id).await.context("resubscribing")?;
    Ok(ResubscribedPage { token, active })
}
