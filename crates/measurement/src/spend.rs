//! Marketing spend per day, channel and campaign, as agencies export it from ad platforms: sent
//! through GraphQL rows or a CSV file, stored once per (day, channel, campaign) so that sending
//! a corrected file replaces figures instead of doubling them.

use crate::service::Measurement;
use crate::{MeasurementError, Result};
use chrono::{DateTime, NaiveDate, Utc};
use kernel::WorkspaceId;
use platform::TenantScope;
use platform::sql::Sql;
use sea_orm::{ConnectionTrait, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tenancy::{Actor, Permission};
use uuid::Uuid;

/// Rows one call may carry.
pub const MAX_SPEND_ROWS: usize = 50_000;
/// Largest spend CSV accepted, in bytes.
pub const MAX_SPEND_CSV_BYTES: usize = 8 * 1024 * 1024;
/// Rows per multi-row insert (8 parameters a row).
const INSERT_ROWS: usize = 1_000;

/// One figure: what was spent on a channel (and optionally a campaign) on a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRow {
    pub day: NaiveDate,
    pub channel: String,
    /// Empty when the figure is for the channel as a whole.
    pub campaign: String,
    pub amount: f64,
    pub currency: String,
}

/// How stored spend is summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGrouping {
    Day,
    Channel,
    Campaign,
}

/// A sum of spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendTotal {
    /// The day (`2026-11-02`), the channel or the campaign, by the grouping.
    pub key: String,
    pub amount: f64,
    pub currency: String,
}

/// Spend per channel and per campaign (lowercased names) in one currency, for reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendSums {
    pub by_channel: HashMap<String, f64>,
    pub by_campaign: HashMap<String, f64>,
    pub total: f64,
    /// Spend recorded in other currencies, left out of returns.
    pub other_currency: f64,
}

/// Why a row of a spend file or list cannot be used; `at` says where (`spend row 3`).
fn row_problem(at: &str, message: impl std::fmt::Display) -> MeasurementError {
    MeasurementError::invalid(format!("{at}: {message}"))
}

impl SpendRow {
    /// Checks and normalises a row: a channel and a campaign of at most 200 characters
    /// (lowercased, as the rules name channels), a finite amount ≥ 0, an ISO 4217 currency.
    /// `at` names the row in errors (`spend row 3`, `spend file line 4`).
    pub fn parse(
        at: &str,
        day: NaiveDate,
        channel: &str,
        campaign: Option<&str>,
        amount: f64,
        currency: &str,
    ) -> Result<Self> {
        let channel = channel.trim().to_lowercase();
        if channel.is_empty() || channel.chars().count() > 200 {
            return Err(row_problem(at, "the channel must be 1 to 200 characters"));
        }
        let campaign = campaign.unwrap_or("").trim().to_owned();
        if campaign.chars().count() > 200 {
            return Err(row_problem(at, "the campaign must be at most 200 characters"));
        }
        if !amount.is_finite() || amount < 0.0 {
            return Err(row_problem(at, format!("the amount must be a finite number ≥ 0, got {amount}")));
        }
        let currency = currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(row_problem(at, format!("the currency must be an ISO 4217 code, got {currency:?}")));
        }
        Ok(Self { day, channel, campaign, amount, currency })
    }
}

/// Reads a spend CSV: a header naming `day` (or `date`), `channel`, `amount` (or `spend`,
/// `cost`), and optionally `campaign` and `currency` (else `default_currency`), in any order.
pub fn read_spend_csv(text: &str, default_currency: Option<&str>) -> Result<Vec<SpendRow>> {
    if text.len() > MAX_SPEND_CSV_BYTES {
        return Err(MeasurementError::invalid(format!(
            "a spend file may have at most {MAX_SPEND_CSV_BYTES} bytes"
        )));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = match text.lines().next() {
        Some(header) if header.contains(';') && !header.contains(',') => b';',
        Some(header) if header.contains('\t') && !header.contains(',') => b'\t',
        _ => b',',
    };
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| MeasurementError::invalid(format!("the spend file's header cannot be read: {e}")))?
        .clone();
    let column =
        |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)));
    let day = column(&["day", "date"])
        .ok_or_else(|| MeasurementError::invalid("the spend file needs a `day` column"))?;
    let channel = column(&["channel"])
        .ok_or_else(|| MeasurementError::invalid("the spend file needs a `channel` column"))?;
    let amount = column(&["amount", "spend", "cost"])
        .ok_or_else(|| MeasurementError::invalid("the spend file needs an `amount` column"))?;
    let campaign = column(&["campaign"]);
    let currency = column(&["currency"]);
    if currency.is_none() && default_currency.is_none() {
        return Err(MeasurementError::invalid(
            "the spend file needs a `currency` column, or give the currency",
        ));
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        // Line numbers as an editor shows them: the header is line 1.
        let line = index + 2;
        let record = record.map_err(|e| MeasurementError::invalid(format!("spend file line {line}: {e}")))?;
        if rows.len() >= MAX_SPEND_ROWS {
            return Err(MeasurementError::invalid(format!(
                "a spend file may have at most {MAX_SPEND_ROWS} rows"
            )));
        }
        let field = |i: usize| record.get(i).unwrap_or("");
        let parsed_day = NaiveDate::parse_from_str(field(day), "%Y-%m-%d").map_err(|_| {
            MeasurementError::invalid(format!(
                "spend file line {line}: the day must be YYYY-MM-DD, got {:?}",
                field(day)
            ))
        })?;
        let parsed_amount: f64 = field(amount).replace(['_', ' '], "").parse().map_err(|_| {
            MeasurementError::invalid(format!(
                "spend file line {line}: the amount is not a number: {:?}",
                field(amount)
            ))
        })?;
        let row_currency = currency.map(field).filter(|c| !c.is_empty()).or(default_currency).unwrap_or("");
        let row = SpendRow::parse(
            &format!("spend file line {line}"),
            parsed_day,
            field(channel),
            campaign.map(field),
            parsed_amount,
            row_currency,
        )?;
        rows.push(row);
    }
    Ok(rows)
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

impl Measurement {
    /// Stores spend rows, replacing any figure already held for the same day, channel and
    /// campaign. Returns how many rows were written.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, rows = rows.len()))]
    pub async fn record_spend(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        rows: Vec<SpendRow>,
    ) -> Result<usize> {
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        self.store_spend(&scope, actor, workspace, rows).await
    }

    /// Stores the rows of a spend CSV (see [`read_spend_csv`]).
    pub async fn import_spend_csv(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        csv: &str,
        default_currency: Option<&str>,
    ) -> Result<usize> {
        // Authorised before the file is read: a stranger learns nothing from its errors.
        let scope = self.authorize(actor, workspace, Permission::Write).await?;
        let rows = read_spend_csv(csv, default_currency)?;
        self.store_spend(&scope, actor, workspace, rows).await
    }

    async fn store_spend(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        workspace: WorkspaceId,
        rows: Vec<SpendRow>,
    ) -> Result<usize> {
        if rows.len() > MAX_SPEND_ROWS {
            return Err(MeasurementError::invalid(format!("at most {MAX_SPEND_ROWS} spend rows per call")));
        }
        // The last figure for a key wins, as in a file sent twice.
        let mut unique: HashMap<(NaiveDate, String, String), SpendRow> = HashMap::new();
        for row in rows {
            unique.insert((row.day, row.channel.clone(), row.campaign.clone()), row);
        }
        let mut rows: Vec<SpendRow> = unique.into_values().collect();
        rows.sort_by(|a, b| (a.day, &a.channel, &a.campaign).cmp(&(b.day, &b.channel, &b.campaign)));
        let tenant = scope.tenant_id().as_uuid();
        let source = actor.label();
        let now = self.now();
        let txn = scope.begin_write(self.db()).await?;
        for chunk in rows.chunks(INSERT_ROWS) {
            let mut insert = Sql::new(
                "INSERT INTO spend (tenant_id, day, channel, campaign, amount, currency, source, updated_at) VALUES ",
            );
            insert.values(chunk.iter().map(|row| -> Vec<Value> {
                vec![
                    tenant.into(),
                    day_start(row.day).into(),
                    row.channel.clone().into(),
                    row.campaign.clone().into(),
                    row.amount.into(),
                    row.currency.clone().into(),
                    source.clone().into(),
                    now.into(),
                ]
            }));
            insert.push(
                " ON CONFLICT (tenant_id, day, channel, campaign) DO UPDATE SET amount = excluded.amount, \
                 currency = excluded.currency, source = excluded.source, updated_at = excluded.updated_at",
            );
            insert.execute(&txn).await?;
        }
        txn.commit().await?;
        self.cache().measurement_changed(workspace).await;
        Ok(rows.len())
    }

    /// Spend in `[from, to)` (days), summed by day, channel or campaign and currency.
    pub async fn spend(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        from: NaiveDate,
        to: NaiveDate,
        grouping: SpendGrouping,
    ) -> Result<Vec<SpendTotal>> {
        let scope = self.authorize(actor, workspace, Permission::Analyze).await?;
        if to <= from {
            return Err(MeasurementError::invalid("`to` must be after `from`"));
        }
        let txn = scope.begin(self.db()).await?;
        let rows = spend_rows(&txn, scope.tenant_id().as_uuid(), day_start(from), day_start(to)).await?;
        txn.commit().await?;
        let mut sums: HashMap<(String, String), f64> = HashMap::new();
        for row in rows {
            let key = match grouping {
                SpendGrouping::Day => row.day.to_string(),
                SpendGrouping::Channel => row.channel,
                SpendGrouping::Campaign => row.campaign,
            };
            *sums.entry((key, row.currency)).or_default() += row.amount;
        }
        let mut totals: Vec<SpendTotal> =
            sums.into_iter().map(|((key, currency), amount)| SpendTotal { key, amount, currency }).collect();
        totals.sort_by(|a, b| (&a.key, &a.currency).cmp(&(&b.key, &b.currency)));
        Ok(totals)
    }
}

async fn spend_rows<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<SpendRow>> {
    let mut statement =
        Sql::new("SELECT day, channel, campaign, amount, currency FROM spend WHERE tenant_id = ");
    statement.bind(tenant).push(" AND day >= ").bind(from).push(" AND day < ").bind(to);
    let rows = statement.fetch_all(txn).await?;
    rows.iter()
        .map(|row| {
            let day: DateTime<Utc> = row.try_get("", "day")?;
            Ok(SpendRow {
                day: day.date_naive(),
                channel: row.try_get("", "channel")?,
                campaign: row.try_get("", "campaign")?,
                amount: row.try_get("", "amount")?,
                currency: row.try_get("", "currency")?,
            })
        })
        .collect()
}

/// Spend in `[from, to)` in `currency`, by channel and by campaign (lowercased).
pub(crate) async fn spend_sums<C: ConnectionTrait>(
    txn: &C,
    tenant: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    currency: &str,
) -> Result<SpendSums> {
    let mut sums = SpendSums::default();
    for row in spend_rows(txn, tenant, from, to).await? {
        if !row.currency.eq_ignore_ascii_case(currency) {
            sums.other_currency += row.amount;
            continue;
        }
        *sums.by_channel.entry(row.channel.to_lowercase()).or_default() += row.amount;
        if !row.campaign.is_empty() {
            *sums.by_campaign.entry(row.campaign.to_lowercase()).or_default() += row.amount;
        }
        sums.total += row.amount;
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spend_file_is_read_by_its_header_in_any_order() {
        let rows = read_spend_csv(
            "\u{feff}Date;Amount;Channel;Campaign\n2026-11-02;1 200.50;Paid_Search;Black Friday\n2026-11-03;0;email;\n",
            Some("eur"),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].channel, "paid_search");
        assert_eq!(rows[0].campaign, "Black Friday");
        assert_eq!(rows[0].amount, 1200.5);
        assert_eq!(rows[0].currency, "EUR");
        assert_eq!(rows[1].campaign, "");
    }

    #[test]
    fn bad_spend_files_name_the_line_and_the_problem() {
        let bad = |text: &str| read_spend_csv(text, None).unwrap_err().to_string();
        assert!(bad("channel,amount,currency\nemail,1,EUR\n").contains("`day` column"));
        assert!(bad("day,channel,amount\n2026-11-02,email,1\n").contains("`currency` column"));
        assert!(
            bad("day,channel,amount,currency\n2026-11-02,email,1,EUR\n02/11/2026,email,1,EUR\n")
                .contains("line 3: the day must be YYYY-MM-DD")
        );
        assert!(bad("day,channel,amount,currency\n2026-11-02,email,-3,EUR\n").contains("line 2: the amount"));
        assert!(bad("day,channel,amount,currency\n2026-11-02,email,lots,EUR\n").contains("not a number"));
        assert!(bad("day,channel,amount,currency\n2026-11-02,email,NaN,EUR\n").contains("finite"));
        assert!(bad("day,channel,amount,currency\n2026-11-02,,1,EUR\n").contains("channel must be"));
        assert!(bad("day,channel,amount,currency\n2026-11-02,email,1,EURO\n").contains("ISO 4217"));
        assert!(bad("day,channel,amount,currency\n2026-11-02,email\n").contains("line 2"));
    }
}
