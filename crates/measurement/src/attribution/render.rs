//! Side-by-side renderings of model results for the CLI: CSV for machines, aligned text for
//! people. Every result must come from the same path set (same channels, same order).

use std::io::{self, Write};

use super::markov::MarkovDetails;
use super::model::ModelResult;

/// One row per channel; per model a `<model>_conversions` and a `<model>_value` column.
/// Numbers are written with full precision.
pub fn write_csv<W: Write>(results: &[ModelResult], out: W) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = vec!["channel".to_owned()];
    for result in results {
        header.push(format!("{}_conversions", result.model));
        header.push(format!("{}_value", result.model));
    }
    writer.write_record(&header)?;
    for (row, channel) in channels(results).iter().enumerate() {
        let mut record = vec![channel.clone()];
        for result in results {
            let credit = result.credits.get(row);
            record.push(credit.map_or(0.0, |credit| credit.conversions).to_string());
            record.push(credit.map_or(0.0, |credit| credit.value).to_string());
        }
        writer.write_record(&record)?;
    }
    writer.flush()
}

/// Two aligned tables (conversions, then value), channels by models, with a total row, then the
/// notes of degenerate results.
pub fn write_table<W: Write>(results: &[ModelResult], mut out: W) -> io::Result<()> {
    for (title, pick) in [
        ("Conversions", (|credit| credit.conversions) as fn(&super::model::ChannelCredit) -> f64),
        ("Value", |credit| credit.value),
    ] {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header = vec!["channel".to_owned()];
        header.extend(results.iter().map(|result| result.model.to_string()));
        rows.push(header);
        let channel_names = channels(results);
        for (row, channel) in channel_names.iter().enumerate() {
            let mut line = vec![channel.clone()];
            line.extend(
                results.iter().map(|result| format!("{:.4}", result.credits.get(row).map_or(0.0, pick))),
            );
            rows.push(line);
        }
        let mut total = vec!["(total)".to_owned()];
        total.extend(
            results.iter().map(|result| format!("{:.4}", result.credits.iter().map(pick).sum::<f64>())),
        );
        rows.push(total);
        writeln!(out, "{title}")?;
        write_aligned(&rows, &mut out)?;
        writeln!(out)?;
    }
    for result in results {
        if let Some(note) = &result.note {
            writeln!(out, "{}: {note}", result.model)?;
        }
    }
    Ok(())
}

/// `channel,removal_effect_conversions,removal_effect_value` (relative removal effects).
pub fn write_removal_effects_csv<W: Write>(details: &MarkovDetails, out: W) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(["channel", "removal_effect_conversions", "removal_effect_value"])?;
    for effect in &details.removal_effects {
        writer.write_record([
            effect.channel.clone(),
            effect.conversions.to_string(),
            effect.value.to_string(),
        ])?;
    }
    writer.flush()
}

/// `from,to,probability`, one row per observed transition, with state labels.
pub fn write_transitions_csv<W: Write>(details: &MarkovDetails, out: W) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(["from", "to", "probability"])?;
    let label = |state: u32| details.states.get(state as usize).map_or("?", String::as_str);
    for transition in &details.transitions {
        writer.write_record([
            label(transition.from),
            label(transition.to),
            &transition.probability.to_string(),
        ])?;
    }
    writer.flush()
}

fn channels(results: &[ModelResult]) -> Vec<String> {
    results
        .first()
        .map(|result| result.credits.iter().map(|credit| credit.channel.clone()).collect())
        .unwrap_or_default()
}

fn write_aligned<W: Write>(rows: &[Vec<String>], out: &mut W) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter().filter_map(|row| row.get(column)).map(|cell| cell.chars().count()).max().unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column == 0 {
                line.push_str(&format!("{cell:<width$}", width = widths[0]));
            } else {
                line.push_str(&format!("  {cell:>width$}", width = widths[column]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::model::{ChannelCredit, Model};
    use super::*;

    fn result(model: Model, credits: &[(&str, f64, f64)]) -> ModelResult {
        ModelResult {
            model,
            credits: credits
                .iter()
                .map(|&(channel, conversions, value)| ChannelCredit {
                    channel: channel.into(),
                    conversions,
                    value,
                })
                .collect(),
            note: None,
            markov: None,
        }
    }

    #[test]
    fn csv_has_a_column_pair_per_model() {
        let results = [
            result(Model::FirstTouch, &[("email", 1.0, 10.5), ("web, direct", 0.0, 0.0)]),
            result(Model::Markov { order: 1 }, &[("email", 0.25, 2.5), ("web, direct", 0.75, 8.0)]),
        ];
        let mut out = Vec::new();
        write_csv(&results, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "channel,first_touch_conversions,first_touch_value,markov_1_conversions,markov_1_value\n\
             email,1,10.5,0.25,2.5\n\
             \"web, direct\",0,0,0.75,8\n"
        );
    }

    #[test]
    fn text_table_is_aligned_with_totals_and_notes() {
        let mut markov = result(Model::Markov { order: 1 }, &[("a", 0.0, 0.0), ("bb", 0.0, 0.0)]);
        markov.note = Some("no conversions".into());
        let results = [result(Model::Linear, &[("a", 1.5, 3.0), ("bb", 0.5, 1.0)]), markov];
        let mut out = Vec::new();
        write_table(&results, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "Conversions\n\
                 channel  linear  markov_1\n\
                 a        1.5000    0.0000\n\
                 bb       0.5000    0.0000\n\
                 (total)  2.0000    0.0000\n"
            ),
            "{text}"
        );
        assert!(text.contains("Value\n") && text.ends_with("markov_1: no conversions\n"), "{text}");
    }
}
