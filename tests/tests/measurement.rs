//! Measurement through GraphQL: attribution models on exported paths (every model conserves the
//! totals, hand-computable values hold), the experiment calculator on raw counts, and sample
//! sizes; bad input gets BAD_USER_INPUT and nobody signed out gets anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passerelle_tests::{Backend, on_both_backends, spawn_app};
use serde_json::{Value, json};

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

on_both_backends!(
    attribution_models_share_out_exactly_the_conversions_and_value,
    the_experiment_calculator_and_sample_sizes_answer_on_raw_counts,
);
