//! Turning people's touches and conversions into attribution paths.
//!
//! A conversion's path is the person's touches in its lookback window that came after their
//! previous conversion (a touch earns credit for one conversion at most), up to and including
//! the conversion's moment. A person who touched in the window but did not convert after their
//! last touch contributes a non-converting path: Markov and Shapley need to know which journeys
//! led nowhere. Conversions with no touch in their window are counted apart, not given to an
//! invented channel.

use crate::Result;
use crate::attribution::{ChannelId, PathLimits, PathOutcome, PathSet, PathSetBuilder};
use crate::touches::TouchDimension;
use crate::touches::load::{Conversion, ConversionLog, Touch, TouchLog};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;
use uuid::Uuid;

/// Touches kept per path (the most recent); longer journeys are cut from the start.
pub const MAX_PATH_TOUCHES: usize = 200;

pub struct PathWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub lookback: Duration,
    pub dimension: TouchDimension,
}

#[derive(Debug)]
pub struct BuiltPaths {
    pub paths: PathSet,
    /// Conversions (and value) in the window, touched or not.
    pub conversions: u64,
    pub value: f64,
    pub conversions_without_touch: u64,
    pub value_without_touch: f64,
    pub converting_paths: u64,
    pub non_converting_paths: u64,
}

/// Paths for the conversions in `[window.from, window.to)`, for the people `only` names (all
/// when `None`).
pub fn build_paths(
    touches: &TouchLog,
    conversions: &ConversionLog,
    window: &PathWindow,
    only: Option<&HashSet<Uuid>>,
) -> Result<BuiltPaths> {
    let mut builder = PathSetBuilder::timed(PathLimits {
        max_channels: PathLimits::default().max_channels,
        max_path_length: MAX_PATH_TOUCHES,
    });
    let mut ids: Vec<Option<ChannelId>> = Vec::new();
    let mut built = BuiltPaths {
        paths: PathSet::default(),
        conversions: 0,
        value: 0.0,
        conversions_without_touch: 0,
        value_without_touch: 0.0,
        converting_paths: 0,
        non_converting_paths: 0,
    };
    let mut path: Vec<ChannelId> = Vec::new();
    let mut ages: Vec<f64> = Vec::new();
    let no_touches: Vec<Touch> = Vec::new();
    let no_conversions: Vec<Conversion> = Vec::new();
    let people: HashSet<&Uuid> = touches.by_profile.keys().chain(conversions.by_profile.keys()).collect();
    let mut people: Vec<&Uuid> = people.into_iter().collect();
    // Deterministic order, so a report is reproducible to the last digit.
    people.sort_unstable();
    for person in people {
        if only.is_some_and(|only| !only.contains(person)) {
            continue;
        }
        let person_touches = touches.by_profile.get(person).unwrap_or(&no_touches);
        let person_conversions = conversions.by_profile.get(person).unwrap_or(&no_conversions);
        let mut previous: Option<DateTime<Utc>> = None;
        for conversion in person_conversions {
            if conversion.at >= window.to {
                break;
            }
            let since = previous;
            previous = Some(conversion.at);
            if conversion.at < window.from {
                continue;
            }
            built.conversions += 1;
            built.value += conversion.value;
            let start = conversion.at - window.lookback;
            let selected = person_touches.iter().filter(|touch| {
                touch.at >= start && touch.at <= conversion.at && since.is_none_or(|since| touch.at > since)
            });
            fill(
                &mut builder,
                &mut ids,
                touches,
                window.dimension,
                selected,
                conversion.at,
                &mut path,
                &mut ages,
            )?;
            if path.is_empty() {
                built.conversions_without_touch += 1;
                built.value_without_touch += conversion.value;
                continue;
            }
            builder.add_timed_path(&path, &ages, None, PathOutcome::new(1.0, conversion.value, 0.0))?;
            built.converting_paths += 1;
        }
        // Touches in the window after the last conversion before its end led nowhere (yet).
        let selected = person_touches.iter().filter(|touch| {
            touch.at >= window.from && touch.at < window.to && previous.is_none_or(|last| touch.at > last)
        });
        fill(&mut builder, &mut ids, touches, window.dimension, selected, window.to, &mut path, &mut ages)?;
        if !path.is_empty() {
            builder.add_timed_path(&path, &ages, None, PathOutcome::new(0.0, 0.0, 1.0))?;
            built.non_converting_paths += 1;
        }
    }
    built.paths = builder.build();
    Ok(built)
}

/// Puts the selected touches (the last [`MAX_PATH_TOUCHES`]) into `path`, with their ages in
/// hours before `end`.
#[allow(clippy::too_many_arguments)]
fn fill<'a>(
    builder: &mut PathSetBuilder,
    ids: &mut Vec<Option<ChannelId>>,
    touches: &TouchLog,
    dimension: TouchDimension,
    selected: impl Iterator<Item = &'a Touch>,
    end: DateTime<Utc>,
    path: &mut Vec<ChannelId>,
    ages: &mut Vec<f64>,
) -> Result<()> {
    path.clear();
    ages.clear();
    for touch in selected {
        let label = touch.label(dimension) as usize;
        if ids.len() <= label {
            ids.resize(label + 1, None);
        }
        let id = match ids[label] {
            Some(id) => id,
            None => {
                let id = builder.channel(touches.labels.name(label as u32))?;
                ids[label] = Some(id);
                id
            }
        };
        path.push(id);
        ages.push(((end - touch.at).num_milliseconds().max(0) as f64) / 3_600_000.0);
    }
    if path.len() > MAX_PATH_TOUCHES {
        let cut = path.len() - MAX_PATH_TOUCHES;
        path.drain(..cut);
        ages.drain(..cut);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::{Model, Options, run};
    use crate::touches::load::Labels;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, day, hour, 0, 0).unwrap()
    }

    struct World {
        touches: TouchLog,
        conversions: ConversionLog,
        labels: Labels,
    }

    impl World {
        fn new() -> Self {
            Self {
                touches: TouchLog::default(),
                conversions: ConversionLog::default(),
                labels: Labels::default(),
            }
        }

        fn touch(&mut self, person: Uuid, channel: &str, campaign: &str, when: DateTime<Utc>) {
            let touch = Touch {
                at: when,
                channel: self.labels.intern(channel),
                campaign: self.labels.intern(campaign),
                device: self.labels.intern("web"),
            };
            self.touches.by_profile.entry(person).or_default().push(touch);
        }

        fn convert(&mut self, person: Uuid, value: f64, when: DateTime<Utc>) {
            self.conversions.by_profile.entry(person).or_default().push(Conversion { at: when, value });
        }

        fn build(mut self, window: &PathWindow, only: Option<&HashSet<Uuid>>) -> BuiltPaths {
            self.touches.labels = self.labels;
            for list in self.touches.by_profile.values_mut() {
                list.sort_by_key(|t| t.at);
            }
            build_paths(&self.touches, &self.conversions, window, only).unwrap()
        }
    }

    fn october(dimension: TouchDimension) -> PathWindow {
        PathWindow { from: at(1, 0), to: at(31, 0), lookback: Duration::days(7), dimension }
    }

    #[test]
    fn a_touch_earns_credit_for_one_conversion_within_the_lookback() {
        let mut world = World::new();
        let ana = Uuid::now_v7();
        world.touch(ana, "display", "autumn", at(1, 9)); // too old for the first conversion
        world.touch(ana, "email", "welcome", at(10, 9));
        world.touch(ana, "search", "(none)", at(11, 9));
        world.convert(ana, 100.0, at(11, 10));
        world.touch(ana, "social", "autumn", at(12, 9));
        world.convert(ana, 50.0, at(13, 10));
        let built = world.build(&october(TouchDimension::Channel), None);
        assert_eq!((built.conversions, built.converting_paths, built.non_converting_paths), (2, 2, 0));
        let last = run(&built.paths, Model::LastTouch, &Options::default()).unwrap();
        let credit = |name: &str| last.credits.iter().find(|c| c.channel == name).map_or(0.0, |c| c.value);
        assert_eq!((credit("search"), credit("social"), credit("display")), (100.0, 50.0, 0.0));
        let first = run(&built.paths, Model::FirstTouch, &Options::default()).unwrap();
        let credit = |name: &str| first.credits.iter().find(|c| c.channel == name).map_or(0.0, |c| c.value);
        assert_eq!(credit("email"), 100.0, "the display touch is outside the 7-day lookback");
        assert_eq!(credit("social"), 50.0, "touches before the previous conversion do not count again");
    }

    #[test]
    fn non_converting_journeys_and_untouched_conversions_are_kept_apart() {
        let mut world = World::new();
        let (bob, eve, kim) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        world.touch(bob, "email", "welcome", at(5, 9));
        world.touch(bob, "email", "welcome", at(6, 9));
        world.convert(eve, 30.0, at(7, 9));
        world.touch(kim, "sms", "promo", at(2, 9));
        world.convert(kim, 20.0, at(3, 9));
        world.touch(kim, "sms", "promo", at(20, 9));
        let built = world.build(&october(TouchDimension::Campaign), None);
        assert_eq!(built.conversions, 2);
        assert_eq!((built.conversions_without_touch, built.value_without_touch), (1, 30.0));
        assert_eq!((built.converting_paths, built.non_converting_paths), (1, 2));
        assert_eq!(built.paths.totals(), PathOutcome::new(1.0, 20.0, 2.0));
        assert!(built.paths.channels().contains(&"promo".to_owned()), "campaign labels, not channels");

        let only = HashSet::from([bob]);
        let world_for_bob = {
            let mut world = World::new();
            world.touch(bob, "email", "welcome", at(5, 9));
            world.convert(eve, 30.0, at(7, 9));
            world
        };
        let built = world_for_bob.build(&october(TouchDimension::Channel), Some(&only));
        assert_eq!((built.conversions, built.non_converting_paths), (0, 1), "only the segment's people");
    }

    #[test]
    fn conversions_outside_the_window_are_not_counted_but_still_close_earlier_paths() {
        let mut world = World::new();
        let ana = Uuid::now_v7();
        world.touch(ana, "email", "a", Utc.with_ymd_and_hms(2026, 9, 29, 9, 0, 0).unwrap());
        world.convert(ana, 10.0, Utc.with_ymd_and_hms(2026, 9, 30, 9, 0, 0).unwrap());
        world.touch(ana, "sms", "b", at(2, 9));
        world.convert(ana, 20.0, at(2, 10));
        let built = world.build(&october(TouchDimension::Channel), None);
        assert_eq!((built.conversions, built.value), (1, 20.0));
        let first = run(&built.paths, Model::FirstTouch, &Options::default()).unwrap();
        assert_eq!(first.credits.iter().find(|c| c.channel == "sms").map(|c| c.value), Some(20.0));
        assert!(first.credits.iter().all(|c| c.channel != "email" || c.value == 0.0));
    }
}
