//! Measurement through GraphQL: attribution models on exported paths (every model conserves the
//! totals, hand-computable values hold), the experiment calculator on raw counts, and sample
//! sizes; bad input gets BAD_USER_INPUT and nobody signed out gets anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Datelike, Duration, Months, NaiveDate, Utc};
use passerelle_tests::receiver::Receiver;
use passerelle_tests::{Backend, TestApp, on_both_backends, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

const PATHS: &str = "path,total_conversions,total_conversion_value,total_null
email > search > direct,10,1000,40
social > email,5,250,100
search,20,2000,60
direct > direct > search,3,90,10
social,0,0,200
";

fn credit(model: &Value, channel: &str) -> (f64, f64) {
    let found = model["channels"].as_array().unwrap().iter().find(|c| c["channel"] == channel).unwrap();
    (found["conversions"].as_f64().unwrap(), found["value"].as_f64().unwrap())
}

async fn attribution_models_share_out_exactly_the_conversions_and_value(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.agency("Measuring agency").await.owner_token;
    let query =
        "query($i: PathAttributionInput!) { attributionFromPaths(input: $i) { rows distinctPaths skippedRows
        totalConversions totalValue models { model note channels { channel conversions value }
        removalEffects { channel conversions } } } }";
    let answer = app.gql(query, json!({"i": {"csv": PATHS}}), Some(&token)).await;
    assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
    let result = answer.data("attributionFromPaths");
    assert_eq!((result["rows"].as_i64(), result["distinctPaths"].as_i64()), (Some(5), Some(5)));
    assert_eq!(result["totalConversions"], json!(38.0));
    let models = result["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["model"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "first_touch",
            "last_touch",
            "last_non_direct",
            "linear",
            "position_based",
            "time_decay",
            "custom",
            "markov_1",
            "shapley"
        ]
    );
    for model in models {
        let channels = model["channels"].as_array().unwrap();
        let conversions: f64 = channels.iter().map(|c| c["conversions"].as_f64().unwrap()).sum();
        let value: f64 = channels.iter().map(|c| c["value"].as_f64().unwrap()).sum();
        assert!((conversions - 38.0).abs() < 1e-9, "{}: {conversions}", model["model"]);
        assert!((value - 3340.0).abs() < 1e-6, "{}: {value}", model["model"]);
    }
    // Last touch: search ends "search" (20) and "direct > direct > search" (3).
    assert_eq!(credit(&models[1], "search"), (23.0, 2090.0));
    // Last non-direct: the 10 conversions of "email > search > direct" go to search too.
    assert_eq!(credit(&models[2], "search").0, 33.0);
    // Shapley: each path's conversions split evenly among its distinct channels.
    let (direct, _) = credit(&models[8], "direct");
    assert!((direct - (10.0 / 3.0 + 1.5)).abs() < 1e-9, "{direct}");
    assert_eq!(models[7]["removalEffects"].as_array().unwrap().len(), 4);
    assert_eq!(models[0]["removalEffects"], Value::Null);

    // A chosen model, another separator and delimiter.
    let semicolons = "path;total_conversions;total_conversion_value;total_null\na | b;2;20;1\nb;1;5;3\n";
    let answer = app
        .gql(
            query,
            json!({"i": {"csv": semicolons, "separator": "|", "models": ["markov_2", "first_touch"]}}),
            Some(&token),
        )
        .await;
    assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
    assert_eq!(credit(&answer.data("attributionFromPaths.models.1").clone(), "a"), (2.0, 20.0));

    // Bad input: a clear error with the line, never a 500.
    let negative = "path,total_conversions,total_conversion_value,total_null\na > b,-1,0,0\n";
    let bad = app.gql(query, json!({"i": {"csv": negative}}), Some(&token)).await;
    bad.expect_code("BAD_USER_INPUT");
    assert!(bad.body.to_string().contains("line 2"), "{:?}", bad.body);
    for input in [
        json!({"csv": PATHS, "models": ["markov_9"]}),
        json!({"csv": "a,b\n1,2\n"}),
        json!({"csv": PATHS, "positionWeights": {"first": 0.5, "middle": 0.5, "last": 0.5}}),
        json!({"csv": PATHS, "delimiter": ";;"}),
    ] {
        app.gql(query, json!({"i": input}), Some(&token)).await.expect_code("BAD_USER_INPUT");
    }
    app.gql(query, json!({"i": {"csv": PATHS}}), None).await.expect_code("UNAUTHENTICATED");
}

async fn the_experiment_calculator_and_sample_sizes_answer_on_raw_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.agency("Testing agency").await.owner_token;
    let query = "query($i: ExperimentCountsInput!) { experimentCalculator(input: $i) { control
        arms { label people conversionRate } comparisons { label relativeLift relativeLiftInterval { lower upper }
        pValue adjustedPValue sequentialPValue } bayesian { label chanceToWin expectedLoss }
        sampleRatio { pValue mismatch } } }";
    let arms = json!([{"label": "A", "visitors": 1000, "conversions": 100},
                      {"label": "B", "visitors": 1000, "conversions": 130}]);
    let answer = app.gql(query, json!({"i": {"arms": arms, "sequential": true}}), Some(&token)).await;
    assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
    let result = answer.data("experimentCalculator");
    assert_eq!(result["control"], "A");
    let b = &result["comparisons"][0];
    assert!((b["relativeLift"].as_f64().unwrap() - 0.3).abs() < 1e-9);
    // Welch: difference 0.03, standard error √((0.09 + 0.1131) / 999) ≈ 0.01426, t ≈ 2.10.
    let p = b["pValue"].as_f64().unwrap();
    assert!((0.03..0.04).contains(&p), "{p}");
    // Delta method: se² = 0.113213/1000/0.1² + 0.13²·0.0900901/1000/0.1⁴ = 0.0265465, so the
    // interval is 0.3 ± 1.959964 × 0.162931 (wider than the difference's: it crosses 0).
    let lower = b["relativeLiftInterval"]["lower"].as_f64().unwrap();
    assert!((lower - (0.3 - 1.959964 * 0.162931)).abs() < 1e-4, "{lower}");
    assert!(b["sequentialPValue"].as_f64().unwrap() >= p, "always-valid is never below fixed-horizon");
    let chances: Vec<f64> =
        result["bayesian"].as_array().unwrap().iter().map(|c| c["chanceToWin"].as_f64().unwrap()).collect();
    assert!((chances.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    assert!(chances[1] > 0.97, "{chances:?}");
    assert_eq!(result["sampleRatio"]["mismatch"], json!(false));

    let skewed = json!([{"label": "A", "visitors": 1000, "conversions": 100},
                        {"label": "B", "visitors": 1200, "conversions": 130}]);
    let answer = app.gql(query, json!({"i": {"arms": skewed}}), Some(&token)).await;
    assert_eq!(answer.data("experimentCalculator.sampleRatio.mismatch"), &json!(true), "{:?}", answer.body);
    for arms in [
        json!([{"label": "A", "visitors": 10, "conversions": 11}, {"label": "B", "visitors": 10, "conversions": 1}]),
        json!([{"label": "A", "visitors": 10, "conversions": 1}]),
        json!([{"label": "A", "visitors": 10, "conversions": 1}, {"label": "A", "visitors": 10, "conversions": 1}]),
    ] {
        app.gql(query, json!({"i": {"arms": arms}}), Some(&token)).await.expect_code("BAD_USER_INPUT");
    }

    let sizes = "query($i: SampleSizeInput!) { sampleSize(input: $i) { perArm total targetRate } }";
    let answer =
        app.gql(sizes, json!({"i": {"baselineRate": 0.10, "absoluteEffect": 0.02}}), Some(&token)).await;
    assert_eq!(answer.data("sampleSize.perArm"), &json!(3841), "{:?}", answer.body);
    assert_eq!(answer.data("sampleSize.total"), &json!(7682));
    let relative =
        app.gql(sizes, json!({"i": {"baselineRate": 0.10, "relativeEffect": 0.2}}), Some(&token)).await;
    assert_eq!(relative.data("sampleSize.perArm"), &json!(3841));
    for input in [
        json!({"baselineRate": 0.10, "absoluteEffect": 0.02, "relativeEffect": 0.2}),
        json!({"baselineRate": 1.5, "relativeEffect": 0.2}),
        json!({"baselineRate": 0.1, "relativeEffect": 0.2, "power": 1.0}),
    ] {
        app.gql(sizes, json!({"i": input}), Some(&token)).await.expect_code("BAD_USER_INPUT");
    }
}

/// A workspace with a write key and a conversion definition (orders in EUR, value `total`).
struct Shop {
    app: TestApp,
    token: String,
    workspace: String,
    key: String,
    conversion: String,
}

impl Shop {
    async fn open(backend: Backend) -> Self {
        let app = spawn_app_with(backend, |settings| settings.workers = false).await;
        let (token, workspace, key) = app.tracking_workspace().await;
        let created = app
            .gql(
                "mutation($w: ID!) { createConversion(workspaceId: $w, input: {name: \"Orders\",
                   eventName: \"Order Completed\", valueProperty: \"total\", currency: \"eur\",
                   filters: [{property: \"total\", op: GTE, value: 0}]}) { id currency lookbackDays filters { op } } }",
                json!({"w": workspace}),
                Some(&token),
            )
            .await;
        assert_eq!(created.data("createConversion.currency"), &json!("EUR"), "{:?}", created.body);
        assert_eq!(created.data("createConversion.lookbackDays"), &json!(30));
        let conversion = created.str("createConversion.id");
        Self { app, token, workspace, key, conversion }
    }

    async fn gql(&self, query: &str, variables: Value) -> passerelle_tests::Gql {
        self.app.gql(query, variables, Some(&self.token)).await
    }

    async fn send(&self, batch: Vec<Value>) {
        let (status, body) = self.app.track("batch", Some(&self.key), &json!({"batch": batch})).await;
        assert_eq!(status, 200, "{body}");
        self.app.process_events().await;
    }

    async fn report(&self, input: Value) -> passerelle_tests::Gql {
        self.gql(
            "query($w: ID!, $i: AttributionInput!) { attribution(workspaceId: $w, input: $i) {
               conversionName currency conversions value conversionsWithoutTouch valueWithoutTouch
               otherCurrencyConversions convertingPaths nonConvertingPaths touches spend cached stableSince
               models { model note rows { key conversions value share spend returnOnSpend costPerAcquisition }
                        removalEffects { key effect } }
               months { month conversions shares { model key share change flagged } } } }",
            json!({"w": self.workspace, "i": input}),
        )
        .await
    }
}

fn days_ago(days: i64) -> String {
    (Utc::now() - Duration::days(days)).to_rfc3339()
}

fn page(user: &str, days: i64, context: Value) -> Value {
    json!({"type": "page", "userId": user, "name": "Home", "timestamp": days_ago(days), "context": context})
}

fn order(user: &str, days: i64, total: f64, currency: &str) -> Value {
    json!({"type": "track", "userId": user, "event": "Order Completed", "timestamp": days_ago(days),
           "properties": {"total": total, "currency": currency}})
}

fn model<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["models"].as_array().unwrap().iter().find(|m| m["model"] == name).unwrap()
}

fn row<'a>(model: &'a Value, key: &str) -> Option<&'a Value> {
    model["rows"].as_array().unwrap().iter().find(|r| r["key"] == key)
}

fn value_of(model: &Value, key: &str) -> f64 {
    row(model, key).map_or(0.0, |r| r["value"].as_f64().unwrap())
}

async fn attribution_reports_are_built_from_ingested_events(backend: Backend) {
    let shop = Shop::open(backend).await;
    let ios = json!({"device": {"type": "ios"}});
    let mut batch = vec![
        // Ana: a paid search click, then a visit from Facebook, then an order (100).
        page(
            "ana",
            10,
            json!({"campaign": {"source": "google", "medium": "cpc", "name": "Brand"},
                               "device": {"type": "ios"}}),
        ),
        page(
            "ana",
            8,
            json!({"page": {"url": "https://shop.example/", "referrer": "https://www.facebook.com/x"},
                              "device": {"type": "ios"}}),
        ),
        order("ana", 7, 100.0, "EUR"),
        // Bob: a newsletter visit (UTM in the URL), an order (50), then a second order with
        // no touch since the first (30).
        page(
            "bob",
            6,
            json!({"page": {"url": "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=Black-Friday"}}),
        ),
        order("bob", 5, 50.0, "EUR"),
        order("bob", 4, 30.0, "EUR"),
        // Cyd: a paid search visit and no order: a journey that led nowhere.
        page("cyd", 3, json!({"campaign": {"source": "bing", "medium": "cpc"}})),
        // Dan orders in dollars: left out and counted.
        page("dan", 3, json!({"campaign": {"source": "bing", "medium": "cpc"}})),
        order("dan", 2, 20.0, "USD"),
        // Eve called the call centre, then ordered (40).
        json!({"type": "track", "userId": "eve", "event": "Called", "timestamp": days_ago(9),
               "context": {"channel": "call_center"}}),
        order("eve", 2, 40.0, "EUR"),
        // Internal navigation is no touch.
        page(
            "eve",
            2,
            json!({"page": {"url": "https://shop.example/cart", "referrer": "https://shop.example/"}}),
        ),
    ];
    batch[2]["context"] = ios;
    shop.send(batch).await;

    let period = json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1)});
    let answer = shop.report(period.clone()).await;
    assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
    let report = answer.data("attribution").clone();
    assert_eq!(report["conversionName"], json!("Orders"));
    assert_eq!((report["conversions"].as_u64(), report["value"].as_f64()), (Some(4), Some(220.0)));
    assert_eq!(
        (report["conversionsWithoutTouch"].as_u64(), report["valueWithoutTouch"].as_f64()),
        (Some(1), Some(30.0))
    );
    assert_eq!(report["otherCurrencyConversions"], json!(1));
    assert_eq!(
        (report["convertingPaths"].as_u64(), report["nonConvertingPaths"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(report["cached"], json!(false));
    assert_eq!(report["models"].as_array().unwrap().len(), 9, "every model side by side");
    for model in report["models"].as_array().unwrap() {
        let rows = model["rows"].as_array().unwrap();
        let conversions: f64 = rows.iter().map(|r| r["conversions"].as_f64().unwrap()).sum();
        let value: f64 = rows.iter().map(|r| r["value"].as_f64().unwrap()).sum();
        assert!((conversions - 3.0).abs() < 1e-9, "{}: {conversions}", model["model"]);
        assert!((value - 190.0).abs() < 1e-6, "{}: {value}", model["model"]);
    }
    let last = model(&report, "last_touch");
    assert_eq!(value_of(last, "social"), 100.0, "the Facebook referral closed Ana's order");
    assert_eq!(value_of(last, "email"), 50.0);
    assert_eq!(value_of(last, "call_center"), 40.0, "an offline channel is a touch");
    assert_eq!(value_of(model(&report, "first_touch"), "paid_search"), 100.0);
    assert_eq!(value_of(model(&report, "linear"), "paid_search"), 50.0);
    assert!(model(&report, "markov_1")["removalEffects"].as_array().unwrap().len() >= 4);

    // By campaign and by device.
    let by_campaign = shop
        .report(json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1),
                                         "by": "CAMPAIGN", "models": ["last_touch"]}))
        .await;
    let last = model(by_campaign.data("attribution"), "last_touch");
    assert_eq!(value_of(last, "black-friday"), 50.0, "{last}");
    let by_device = shop
        .report(json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1),
                                       "by": "DEVICE", "models": ["first_touch"]}))
        .await;
    assert_eq!(value_of(model(by_device.data("attribution"), "first_touch"), "ios"), 100.0);

    // The agency's position weights: all on the first touch makes position-based first touch.
    let weighted = shop
        .report(json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1),
                       "models": ["position_based", "first_touch"], "positionWeights": {"first": 1, "middle": 0, "last": 0}}))
        .await;
    let report = weighted.data("attribution").clone();
    assert_eq!(model(&report, "position_based")["rows"], model(&report, "first_touch")["rows"]);
    shop.report(json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1),
                       "positionWeights": {"first": 1, "middle": 1, "last": 0}}))
        .await
        .expect_code("BAD_USER_INPUT");

    // Cached until the data changes: a new conversion arrives, then spend.
    let hits = shop.app.measurement.report_cache_stats().hits;
    let again = shop.report(period.clone()).await;
    assert_eq!(again.data("attribution.cached"), &json!(true));
    assert_eq!(shop.app.measurement.report_cache_stats().hits, hits + 1);
    assert_eq!(
        shop.app.metric("passerelle_cache_hits_total{cache=\"reports\"}").await,
        Some((hits + 1) as f64)
    );
    assert_eq!(again.data("attribution.conversions"), &json!(4));
    shop.send(vec![
        page("fay", 1, json!({"campaign": {"source": "newsletter", "medium": "email"}})),
        order("fay", 1, 10.0, "EUR"),
    ])
    .await;
    let fresh = shop.report(period.clone()).await;
    assert_eq!(fresh.data("attribution.cached"), &json!(false), "a new conversion invalidates the report");
    assert_eq!(fresh.data("attribution.conversions"), &json!(5));

    // Spend through GraphQL rows and a CSV; return on spend per row.
    let spend_day = (Utc::now() - Duration::days(8)).date_naive().to_string();
    let recorded = shop
        .gql(
            "mutation($w: ID!, $r: [SpendInput!]!) { recordSpend(workspaceId: $w, rows: $r) }",
            json!({"w": shop.workspace, "r": [
                {"day": spend_day, "channel": "Social", "amount": 20, "currency": "EUR"},
                {"day": spend_day, "channel": "social", "amount": 25, "currency": "EUR"},
                {"day": spend_day, "channel": "paid_search", "amount": 40, "currency": "EUR"}]}),
        )
        .await;
    assert_eq!(
        recorded.data("recordSpend"),
        &json!(2),
        "the same day and channel twice: the last figure wins"
    );
    let csv = format!("day;channel;campaign;amount\n{spend_day};email;Black-Friday;10\n");
    let imported = shop
        .gql(
            "mutation($w: ID!, $c: String!) { importSpend(workspaceId: $w, csv: $c, currency: \"EUR\") }",
            json!({"w": shop.workspace, "c": csv}),
        )
        .await;
    assert_eq!(imported.data("importSpend"), &json!(1), "{:?}", imported.body);
    let with_spend = shop.report(period.clone()).await;
    assert_eq!(with_spend.data("attribution.cached"), &json!(false), "new spend invalidates the report");
    let report = with_spend.data("attribution").clone();
    assert_eq!(report["spend"], json!(75.0));
    let social = row(model(&report, "last_touch"), "social").unwrap().clone();
    assert_eq!((social["spend"].as_f64(), social["returnOnSpend"].as_f64()), (Some(25.0), Some(4.0)));
    assert_eq!(social["costPerAcquisition"], json!(25.0));
    let totals = shop
        .gql("query($w: ID!, $f: NaiveDate!, $t: NaiveDate!) { spend(workspaceId: $w, from: $f, to: $t, groupBy: CHANNEL) { key amount currency } }",
             json!({"w": shop.workspace, "f": spend_day, "t": (Utc::now() + Duration::days(1)).date_naive().to_string()}))
        .await;
    let keys: Vec<(String, f64)> = totals
        .data("spend")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap().to_owned(), t["amount"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [("email".to_owned(), 10.0), ("paid_search".to_owned(), 40.0), ("social".to_owned(), 25.0)]
    );

    // Month by month, with shares that add up and changes flagged.
    let monthly = shop
        .report(json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1),
                                     "models": ["last_touch"], "monthly": true}))
        .await;
    let months = monthly.data("attribution.months").as_array().unwrap().clone();
    assert!(!months.is_empty(), "{:?}", monthly.body);
    let in_months: u64 = months.iter().map(|m| m["conversions"].as_u64().unwrap()).sum();
    assert_eq!(in_months, 5, "every conversion falls in one month");
    for month in &months {
        let shares: f64 =
            month["shares"].as_array().unwrap().iter().map(|s| s["share"].as_f64().unwrap()).sum();
        assert!(shares == 0.0 || (shares - 1.0).abs() < 1e-9, "{month}");
    }

    // Stability: two past months in which the closing channel changes. The change is flagged
    // and the model has not settled.
    let this_month = Utc::now().date_naive().with_day(1).unwrap();
    let month = |back: u32| this_month.checked_sub_months(Months::new(back)).unwrap();
    let start = |date: NaiveDate| date.and_hms_opt(0, 0, 0).unwrap().and_utc().to_rfc3339();
    let at = |date: NaiveDate, day: u32| {
        date.with_day(day).unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc().to_rfc3339()
    };
    shop.send(vec![
        json!({"type": "page", "userId": "gus", "name": "Home", "timestamp": at(month(3), 10),
               "context": {"campaign": {"source": "google", "medium": "cpc"}}}),
        json!({"type": "track", "userId": "gus", "event": "Order Completed", "timestamp": at(month(3), 11),
               "properties": {"total": 10}}),
        json!({"type": "page", "userId": "hal", "name": "Home", "timestamp": at(month(2), 10),
               "context": {"campaign": {"source": "newsletter", "medium": "email"}}}),
        json!({"type": "track", "userId": "hal", "event": "Order Completed", "timestamp": at(month(2), 11),
               "properties": {"total": 10}}),
    ])
    .await;
    let stability = shop
        .report(json!({"conversionId": shop.conversion, "from": start(month(3)), "to": start(month(1)),
                       "models": ["last_touch"], "monthly": true}))
        .await;
    let report = stability.data("attribution").clone();
    let months = report["months"].as_array().unwrap();
    assert_eq!(months.len(), 2, "{report}");
    let share = |month: &Value, key: &str| {
        month["shares"].as_array().unwrap().iter().find(|s| s["key"] == key).cloned()
    };
    let first = share(&months[0], "paid_search").unwrap();
    assert_eq!(
        (first["share"].as_f64(), &first["change"], &first["flagged"]),
        (Some(1.0), &Value::Null, &json!(false))
    );
    let second = share(&months[1], "email").unwrap();
    assert_eq!((second["share"].as_f64(), second["change"].as_f64()), (Some(1.0), Some(1.0)));
    assert_eq!(second["flagged"], json!(true));
    assert_eq!(report["stableSince"], Value::Null, "the last month moved");

    // The agency's own rules apply to past touches.
    let rules = shop
        .gql("mutation($w: ID!) { setChannelRules(workspaceId: $w, rules: [{channel: \"Brand Search\", source: \"google\", campaign: \"brand.*\"}]) { standard rules { channel } } }",
             json!({"w": shop.workspace}))
        .await;
    assert_eq!(rules.data("setChannelRules.standard"), &json!(false), "{:?}", rules.body);
    let ruled = shop.report(json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1), "models": ["first_touch", "last_touch"]})).await;
    let report = ruled.data("attribution").clone();
    assert_eq!(value_of(model(&report, "first_touch"), "brand search"), 100.0);
    assert_eq!(
        value_of(model(&report, "last_touch"), "unassigned"),
        160.0,
        "no rule claims the referral or the newsletters (Ana 100, Bob 50, Fay 10)"
    );
    let standard = shop.gql("mutation($w: ID!) { setChannelRules(workspaceId: $w, rules: []) { standard rules { channel } } }", json!({"w": shop.workspace})).await;
    assert_eq!(standard.data("setChannelRules.standard"), &json!(true));

    // One segment's people only.
    shop.send(vec![json!({"type": "identify", "userId": "ana", "traits": {"vip": true}})]).await;
    shop.app.segments.apply_changes().await.unwrap();
    let segment = shop
        .gql("mutation($w: ID!) { createSegment(input: {workspaceId: $w, name: \"VIP\", definition: {text: \"trait vip = true\"}}) { id size } }",
             json!({"w": shop.workspace}))
        .await;
    let vips = shop
        .report(json!({"conversionId": shop.conversion, "from": days_ago(20), "to": days_ago(-1),
                                  "segmentId": segment.str("createSegment.id"), "models": ["last_touch"]}))
        .await;
    assert_eq!(vips.data("attribution.conversions"), &json!(1), "{:?}", vips.body);
    assert_eq!(value_of(model(vips.data("attribution"), "last_touch"), "social"), 100.0);

    // Customer quality by acquisition channel (nobody's 90 days are over yet).
    let quality = shop
        .gql("query($w: ID!, $c: ID!, $f: DateTime!, $t: DateTime!) { customerQuality(workspaceId: $w, conversionId: $c, from: $f, to: $t) {
               channel people maturePeople conversionRate } }",
             json!({"w": shop.workspace, "c": shop.conversion, "f": days_ago(20), "t": days_ago(-1)}))
        .await;
    let groups: BTreeMap<String, (u64, u64)> = quality
        .data("customerQuality")
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["channel"].as_str().unwrap().to_owned(),
                (g["people"].as_u64().unwrap(), g["maturePeople"].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(groups.get("paid_search"), Some(&(3, 0)), "{groups:?}");
    assert_eq!(groups.get("call_center"), Some(&(1, 0)));
    assert_eq!(groups.values().map(|(people, _)| people).sum::<u64>(), 6);

    // Bad input, strangers and roles.
    let bad = |input: Value| shop.report(input);
    bad(json!({"conversionId": shop.conversion, "from": days_ago(1), "to": days_ago(2)}))
        .await
        .expect_code("BAD_USER_INPUT");
    bad(
        json!({"conversionId": shop.conversion, "from": days_ago(2), "to": days_ago(1), "models": ["magic"]}),
    )
    .await
    .expect_code("BAD_USER_INPUT");
    bad(json!({"conversionId": uuid::Uuid::now_v7().to_string(), "from": days_ago(2), "to": days_ago(1)}))
        .await
        .expect_code("NOT_FOUND");
    bad(json!({"conversionId": "not-an-id", "from": days_ago(2), "to": days_ago(1)}))
        .await
        .expect_code("BAD_USER_INPUT");
    shop.gql("mutation($w: ID!) { createConversion(workspaceId: $w, input: {name: \"Orders\", eventName: \"x\", currency: \"EUR\"}) { id } }",
             json!({"w": shop.workspace})).await.expect_code("CONFLICT");
    shop.gql("mutation($w: ID!) { createConversion(workspaceId: $w, input: {name: \"X\", eventName: \"x\", currency: \"EURO\"}) { id } }",
             json!({"w": shop.workspace})).await.expect_code("BAD_USER_INPUT");
    shop.gql("mutation($w: ID!) { setChannelRules(workspaceId: $w, rules: [{channel: \"x\", medium: \"(\"}]) { standard } }",
             json!({"w": shop.workspace})).await.expect_code("BAD_USER_INPUT");
    shop.gql("mutation($w: ID!) { importSpend(workspaceId: $w, csv: \"day,channel,amount,currency\\n2026-13-01,email,1,EUR\\n\") }",
             json!({"w": shop.workspace})).await.expect_code("BAD_USER_INPUT");
    let (_, viewer) = shop.app.staff(&shop.token, "VIEWER", Some(&shop.workspace)).await;
    shop.app.gql("query($w: ID!, $i: AttributionInput!) { attribution(workspaceId: $w, input: $i) { conversions } }",
                 json!({"w": shop.workspace, "i": period.clone()}), Some(&viewer)).await.expect_code("FORBIDDEN");
    let (_, analyst) = shop.app.staff(&shop.token, "ANALYST", Some(&shop.workspace)).await;
    let allowed = shop.app.gql("query($w: ID!, $i: AttributionInput!) { attribution(workspaceId: $w, input: $i) { conversions } }",
                               json!({"w": shop.workspace, "i": period.clone()}), Some(&analyst)).await;
    assert_eq!(allowed.data("attribution.conversions"), &json!(5), "{:?}", allowed.body);
    let other = shop.app.agency("Other agency").await.owner_token;
    let elsewhere = shop.app.create_workspace(&other, "Elsewhere").await;
    shop.app.gql("query($w: ID!, $i: AttributionInput!) { attribution(workspaceId: $w, input: $i) { conversions } }",
                 json!({"w": elsewhere, "i": period}), Some(&other)).await.expect_code("NOT_FOUND");
}

async fn journeys_are_measured_against_their_holdout_and_between_their_arms(backend: Backend) {
    let shop = Shop::open(backend).await;
    let segment = shop
        .gql("mutation($w: ID!) { createSegment(input: {workspaceId: $w, name: \"Pro\", definition: {text: \"trait plan = \\\"pro\\\"\"}}) { id } }",
             json!({"w": shop.workspace}))
        .await
        .str("createSegment.id");
    // A real send after the split, so the journey's touches reach attribution too.
    let receiver = Receiver::start().await;
    let channel = shop
        .gql("mutation($w: ID!, $d: JSON!) { createChannel(input: {workspaceId: $w, name: \"Mail\", kind: \"email\", delivery: $d}) { channel { id } } }",
             json!({"w": shop.workspace, "d": {"adapter": "webhook", "url": receiver.url()}}))
        .await
        .str("createChannel.channel.id");
    let content = shop
        .gql("mutation($w: ID!, $t: JSON!) { createContent(workspaceId: $w, name: \"Winback\", template: $t) { id } }",
             json!({"w": shop.workspace, "t": {"variants": [{"kind": "email", "subject": "We miss you", "body": "Come back"}]}}))
        .await
        .str("createContent.id");
    let journey = shop
        .gql("mutation($w: ID!, $g: JSON!) { createJourney(input: {workspaceId: $w, name: \"Winback\", graph: $g}) { id } }",
             json!({"w": shop.workspace, "g": {
                "entry": {"trigger": {"type": "segment_entered", "segment": segment}, "next": "control"},
                "steps": [
                  {"id": "control", "type": "holdout", "percent": 30, "next": "ab"},
                  {"id": "ab", "type": "split", "variants": [{"name": "A", "weight": 50, "next": "tag"},
                                                             {"name": "B", "weight": 50, "next": "tag"}]},
                  {"id": "tag", "type": "update_trait", "name": "stage", "value": "won", "next": "mail"},
                  {"id": "mail", "type": "send", "channel": channel, "content": content, "next": "end"},
                  {"id": "end", "type": "exit"}]}}))
        .await
        .str("createJourney.id");
    let published = shop
        .gql(
            "mutation($w: ID!, $id: ID!) { publishJourney(workspaceId: $w, id: $id) { status } }",
            json!({"w": shop.workspace, "id": journey}),
        )
        .await;
    assert!(published.body.get("errors").is_none(), "{:?}", published.body);

    let people = 120;
    shop.send(
        (0..people)
            .map(|i| {
                json!({"type": "identify", "userId": format!("p{i}"),
                            "traits": {"plan": "pro", "email": format!("p{i}@example.com")}})
            })
            .collect(),
    )
    .await;
    let mut profiles = Vec::with_capacity(people);
    for i in 0..people {
        let profile = shop
            .gql("query($w: ID!, $v: String!) { profiles(workspaceId: $w, first: 1, filter: {identifier: {kind: \"user_id\", value: $v}}) { edges { node { id } } } }",
                 json!({"w": shop.workspace, "v": format!("p{i}")}))
            .await
            .node_strings("profiles", "id")[0]
            .clone();
        let consent = shop
            .gql("mutation($w: ID!, $p: ID!) { setConsent(workspaceId: $w, profileId: $p, input: {purpose: \"marketing\", channel: \"email\", granted: true, source: \"form\"}) { granted } }",
                 json!({"w": shop.workspace, "p": profile}))
            .await;
        assert_eq!(consent.data("setConsent.granted"), &json!(true), "{:?}", consent.body);
        profiles.push(profile);
    }
    shop.app.run_journeys().await;
    shop.app.run_journeys().await;
    let mut held_out: HashSet<String> = HashSet::new();
    let mut after = Value::Null;
    loop {
        let page = shop
            .gql(
                "query($w: ID!, $j: ID, $after: String) { sendBlocks(workspaceId: $w, journeyId: $j, first: 100,
                   after: $after) { edges { node { profileId reason } } pageInfo { hasNextPage endCursor } } }",
                json!({"w": shop.workspace, "j": journey, "after": after}),
            )
            .await;
        for edge in page.data("sendBlocks.edges").as_array().unwrap() {
            if edge["node"]["reason"] == "holdout" {
                held_out.insert(edge["node"]["profileId"].as_str().unwrap().to_owned());
            }
        }
        if page.data("sendBlocks.pageInfo.hasNextPage") != &json!(true) {
            break;
        }
        after = page.data("sendBlocks.pageInfo.endCursor").clone();
    }
    assert!(!held_out.is_empty() && held_out.len() < people);

    // Conversions after entry, from events: every second treated person (20 each), every
    // fourth held-out one (10 each). The held-out have left the journey, so only events can
    // tell that they converted.
    let mut expected = BTreeMap::from([(true, (0u64, 0u64, 0.0)), (false, (0, 0, 0.0))]);
    let mut orders = Vec::new();
    for (i, profile) in profiles.iter().enumerate() {
        let user = format!("p{i}");
        let holdout = held_out.contains(profile);
        let group = expected.get_mut(&holdout).unwrap();
        group.0 += 1;
        let (converts, value) = if holdout { (i % 4 == 0, 10.0) } else { (i % 2 == 0, 20.0) };
        if converts {
            group.1 += 1;
            group.2 += value;
            orders.push(json!({"type": "track", "userId": user, "event": "Order Completed", "properties": {"total": value}}));
        }
    }
    shop.send(orders).await;
    shop.gql(
        "mutation($w: ID!, $r: [SpendInput!]!) { recordSpend(workspaceId: $w, rows: $r) }",
        json!({"w": shop.workspace, "r": [{"day": Utc::now().date_naive().to_string(), "channel": "email",
                    "campaign": "Winback", "amount": 300, "currency": "EUR"}]}),
    )
    .await;

    let answer = shop
        .gql("query($w: ID!, $j: ID!, $c: ID!) { journeyIncrementality(workspaceId: $w, journeyId: $j, conversionId: $c) {
               journeyName windowDays cost treatment { people conversions value } control { people conversions value }
               conversion { difference pValue relativeLift relativeLiftInterval { lower upper } }
               incrementalConversions { value } incrementalRevenue { value } costPerIncrementalAcquisition { value } } }",
             json!({"w": shop.workspace, "j": journey, "c": shop.conversion}))
        .await;
    assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
    let result = answer.data("journeyIncrementality").clone();
    let (treated, control) = (expected[&false], expected[&true]);
    assert_eq!(
        (
            result["treatment"]["people"].as_u64().unwrap(),
            result["treatment"]["conversions"].as_u64().unwrap()
        ),
        (treated.0, treated.1)
    );
    assert_eq!(
        (result["control"]["people"].as_u64().unwrap(), result["control"]["conversions"].as_u64().unwrap()),
        (control.0, control.1)
    );
    assert_eq!(result["control"]["value"].as_f64().unwrap(), control.2);
    let rate = |g: (u64, u64, f64)| g.1 as f64 / g.0 as f64;
    let difference = result["conversion"]["difference"].as_f64().unwrap();
    assert!((difference - (rate(treated) - rate(control))).abs() < 1e-9);
    let incremental = result["incrementalConversions"]["value"].as_f64().unwrap();
    assert!((incremental - difference * treated.0 as f64).abs() < 1e-6);
    assert_eq!(result["cost"], json!(300.0), "the spend recorded under the journey's name");
    assert!(
        (result["costPerIncrementalAcquisition"]["value"].as_f64().unwrap() - 300.0 / incremental).abs()
            < 1e-6
    );
    assert_eq!(result["windowDays"], json!(30));

    let experiment = shop
        .gql("query($w: ID!, $j: ID!, $c: ID!) { journeyExperiment(workspaceId: $w, journeyId: $j, conversionId: $c, sequential: true) {
               analysis { control arms { label people conversions } comparisons { label pValue sequentialPValue }
               bayesian { label chanceToWin } sampleRatio { mismatch } } } }",
             json!({"w": shop.workspace, "j": journey, "c": shop.conversion}))
        .await;
    assert!(experiment.body.get("errors").is_none(), "{:?}", experiment.body);
    let analysis = experiment.data("journeyExperiment.analysis").clone();
    let arms = analysis["arms"].as_array().unwrap();
    let labels: Vec<&str> = arms.iter().map(|a| a["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["A", "B"]);
    let people_in_arms: u64 = arms.iter().map(|a| a["people"].as_u64().unwrap()).sum();
    let converted_in_arms: u64 = arms.iter().map(|a| a["conversions"].as_u64().unwrap()).sum();
    assert_eq!((people_in_arms, converted_in_arms), (treated.0, treated.1), "the held out are in no arm");
    assert_eq!(analysis["sampleRatio"]["mismatch"], json!(false), "a 50/50 split as planned");
    assert!(analysis["comparisons"][0]["sequentialPValue"].is_number());
    let chances: f64 =
        analysis["bayesian"].as_array().unwrap().iter().map(|c| c["chanceToWin"].as_f64().unwrap()).sum();
    assert!((chances - 1.0).abs() < 1e-6);

    // The journey's sends are touches: by campaign, every treated order goes to the journey,
    // and the held-out orders, untouched, are counted apart.
    assert_eq!(receiver.received().len() as u64, treated.0, "one mail per treated person");
    let by_campaign = shop
        .gql("query($w: ID!, $i: AttributionInput!) { attribution(workspaceId: $w, input: $i) {
               conversions conversionsWithoutTouch models { model rows { key conversions value } } } }",
             json!({"w": shop.workspace, "i": {"conversionId": shop.conversion, "from": days_ago(1), "to": days_ago(-1),
                    "by": "CAMPAIGN", "models": ["last_touch"]}}))
        .await;
    assert!(by_campaign.body.get("errors").is_none(), "{:?}", by_campaign.body);
    let report = by_campaign.data("attribution").clone();
    assert_eq!(report["conversions"].as_u64().unwrap(), treated.1 + control.1);
    assert_eq!(report["conversionsWithoutTouch"].as_u64().unwrap(), control.1);
    let last = model(&report, "last_touch");
    assert_eq!(row(last, "Winback").unwrap()["conversions"].as_f64().unwrap(), treated.1 as f64, "{last}");
    assert_eq!(value_of(last, "Winback"), treated.2);

    // Bad windows and unknown journeys.
    shop.gql("query($w: ID!, $j: ID!, $c: ID!) { journeyIncrementality(workspaceId: $w, journeyId: $j, conversionId: $c, windowDays: 0) { cost } }",
             json!({"w": shop.workspace, "j": journey, "c": shop.conversion})).await.expect_code("BAD_USER_INPUT");
    shop.gql("query($w: ID!, $j: ID!, $c: ID!) { journeyIncrementality(workspaceId: $w, journeyId: $j, conversionId: $c) { cost } }",
             json!({"w": shop.workspace, "j": uuid::Uuid::now_v7().to_string(), "c": shop.conversion})).await.expect_code("NOT_FOUND");
}

/// Conversion definitions are edited and deleted through GraphQL, names stay unique, and the
/// workspace's channel rules read back as they were set.
async fn conversions_and_channel_rules_are_edited_through_the_api(backend: Backend) {
    let shop = Shop::open(backend).await;
    let fields = "id name eventName valueProperty currency lookbackDays filters { property op }";
    let updated = shop
        .gql(
            &format!(
                "mutation($w: ID!, $id: ID!) {{ updateConversion(workspaceId: $w, id: $id, input: {{name: \"Big orders\",
                   eventName: \"Order Completed\", valueProperty: \"total\", currency: \"EUR\", lookbackDays: 7,
                   filters: [{{property: \"total\", op: GTE, value: 100}}]}}) {{ {fields} }} }}"
            ),
            json!({"w": shop.workspace, "id": shop.conversion}),
        )
        .await;
    assert_eq!(updated.data("updateConversion.id"), &json!(shop.conversion), "{:?}", updated.body);
    assert_eq!(updated.data("updateConversion.name"), &json!("Big orders"));
    assert_eq!(updated.data("updateConversion.lookbackDays"), &json!(7));
    assert_eq!(updated.data("updateConversion.filters"), &json!([{"property": "total", "op": "GTE"}]));
    let read = shop
        .gql(
            &format!("query($w: ID!, $id: ID!) {{ conversion(workspaceId: $w, id: $id) {{ {fields} }} }}"),
            json!({"w": shop.workspace, "id": shop.conversion}),
        )
        .await;
    assert_eq!(read.data("conversion"), updated.data("updateConversion"), "what was saved is what is read");

    // Names are unique: another definition cannot take it, by creation or by update.
    let create = |name: &str| {
        shop.gql(
            "mutation($w: ID!, $n: String!) { createConversion(workspaceId: $w, input: {name: $n,
               eventName: \"Signed Up\", currency: \"EUR\"}) { id } }",
            json!({"w": shop.workspace, "n": name}),
        )
    };
    create("Big orders").await.expect_code("CONFLICT");
    let signups = create("Signups").await.str("createConversion.id");
    shop.gql(
        "mutation($w: ID!, $id: ID!) { updateConversion(workspaceId: $w, id: $id, input: {name: \"Big orders\",
           eventName: \"Signed Up\", currency: \"EUR\"}) { id } }",
        json!({"w": shop.workspace, "id": signups}),
    )
    .await
    .expect_code("CONFLICT");

    // Deleted: gone from the list, and a second delete or an update finds nothing.
    let delete = || {
        shop.gql(
            "mutation($w: ID!, $id: ID!) { deleteConversion(workspaceId: $w, id: $id) }",
            json!({"w": shop.workspace, "id": signups}),
        )
    };
    assert_eq!(delete().await.data("deleteConversion"), &json!(true));
    let listed = shop
        .gql("query($w: ID!) { conversions(workspaceId: $w) { name } }", json!({"w": shop.workspace}))
        .await;
    assert_eq!(listed.data("conversions"), &json!([{"name": "Big orders"}]));
    delete().await.expect_code("NOT_FOUND");

    // Channel rules: the standard set until the workspace has its own, then its own, in order.
    let rules = || {
        shop.gql(
            "query($w: ID!) { channelRules(workspaceId: $w) { standard rules { channel } } }",
            json!({"w": shop.workspace}),
        )
    };
    let standard = rules().await;
    assert_eq!(standard.data("channelRules.standard"), &json!(true), "{:?}", standard.body);
    shop.gql(
        "mutation($w: ID!) { setChannelRules(workspaceId: $w, rules: [{channel: \"Brand Search\", source: \"google\",
           campaign: \"brand.*\"}, {channel: \"Partners\", medium: \"affiliate\"}]) { standard } }",
        json!({"w": shop.workspace}),
    )
    .await;
    let own = rules().await;
    assert_eq!(own.data("channelRules.standard"), &json!(false));
    let channels: Vec<String> = own
        .data("channelRules.rules")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["channel"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(channels, ["brand search", "partners"]);
}

on_both_backends!(
    conversions_and_channel_rules_are_edited_through_the_api,
    attribution_models_share_out_exactly_the_conversions_and_value,
    the_experiment_calculator_and_sample_sizes_answer_on_raw_counts,
    attribution_reports_are_built_from_ingested_events,
    journeys_are_measured_against_their_holdout_and_between_their_arms,
);
