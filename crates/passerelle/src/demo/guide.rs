//! What the demo prints when it is done: where the data is, how to start the server and sign
//! in, and three GraphQL documents with the real ids filled in, ready to paste into GraphiQL.
//! Each document is printed between a line "```graphql" and a line "```", which is also how
//! the demo's test finds them.

use chrono::{DateTime, Utc};
use kernel::{ConversionId, JourneyId, ProfileId, SegmentId, WorkspaceId};
use std::fmt::Write as _;

/// Everything the guide mentions.
pub struct Guide {
    pub data: String,
    pub start_over: String,
    pub serve_command: String,
    pub url: String,
    pub email: String,
    pub password: String,
    pub workspaces: Vec<(String, WorkspaceId)>,
    pub workspace: WorkspaceId,
    pub customer: ProfileId,
    pub segment: SegmentId,
    pub conversion: ConversionId,
    pub journey: JourneyId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Guide {
    /// The three queries: a title and a document each.
    pub fn queries(&self) -> [(&'static str, String); 3] {
        let Self { workspace, customer, segment, conversion, journey, .. } = self;
        let at = |time: &DateTime<Utc>| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (from, to) = (at(&self.from), at(&self.to));
        [
            (
                "One customer across devices and channels: the identities that merged into one profile \
                 (two browsers' cookies, the app's device and advertising ids, email, phone, loyalty card), \
                 the merges, consents, segments and the timeline across web, app, shop and call centre",
                format!(
                    r#"query Customer {{
  profile(workspaceId: "{workspace}", id: "{customer}") {{
    id traits lifetimeRevenue firstTouchChannel devices
    identities {{ kind value }}
    merges {{ causeKind causeValue createdAt }}
    consents {{ purpose channel granted source }}
    segments {{ enteredAt segment {{ name }} }}
    events(first: 25) {{ edges {{ node {{ occurredAt type name channel }} }} }}
  }}
}}"#
                ),
            ),
            (
                "A segment: its definition, size, last week's entries and exits, and its first members",
                format!(
                    r#"query Segment {{
  segment(workspaceId: "{workspace}", id: "{segment}") {{
    name size definition {{ text }}
    sizeHistory(days: 7) {{ day size entered exited }}
    members(first: 10) {{
      edges {{ node {{ enteredAt profile {{ id lifetimeRevenue traits }} }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"#
                ),
            ),
            (
                "What worked: purchases over the last 90 days attributed to channels under every model side \
                 by side, with spend, return on spend and cost per acquisition; and the cart-recovery journey \
                 against its holdout and between its two arms",
                format!(
                    r#"query WhatWorked {{
  attribution(workspaceId: "{workspace}", input: {{conversionId: "{conversion}", from: "{from}", to: "{to}"}}) {{
    conversions value conversionsWithoutTouch spend
    models {{ model rows {{ key conversions value share spend returnOnSpend costPerAcquisition }} }}
  }}
  journeyIncrementality(workspaceId: "{workspace}", journeyId: "{journey}", conversionId: "{conversion}") {{
    journeyName cost
    treatment {{ people conversions conversionRate value }}
    control {{ people conversions conversionRate value }}
    conversion {{ difference relativeLift pValue }}
    incrementalConversions {{ value }} incrementalRevenue {{ value }}
  }}
  journeyExperiment(workspaceId: "{workspace}", journeyId: "{journey}", conversionId: "{conversion}") {{
    analysis {{
      control arms {{ label people conversions conversionRate }}
      comparisons {{ label relativeLift pValue }}
      bayesian {{ label chanceToWin }}
      sampleRatio {{ mismatch }}
    }}
  }}
}}"#
                ),
            ),
        ]
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let login = format!(
            r#"mutation {{ login(email: "{}", password: "{}") {{ accessToken refreshToken expiresAt }} }}"#,
            self.email, self.password
        );
        // Writing to a String cannot fail.
        let _ = writeln!(out, "\nThe demo data is in {}.", self.data);
        let _ = writeln!(out, "To start over: {}.\n", self.start_over);
        let _ = writeln!(out, "Start the server on it:\n\n    {}\n", self.serve_command);
        let _ = writeln!(out, "and open GraphiQL at {}. Sign in as the agency's owner:\n", self.url);
        let _ = writeln!(out, "    email:    {}", self.email);
        let _ =
            writeln!(out, "    password: {}   (shown this once; only its hash is stored)\n", self.password);
        let _ = writeln!(out, "    {login}\n");
        let _ = writeln!(
            out,
            "then send the accessToken with every request as the header\n\n    Authorization: Bearer <accessToken>\n\n\
             (in GraphiQL: the Headers tab, {{\"Authorization\": \"Bearer <accessToken>\"}}).\n"
        );
        let _ = writeln!(out, "Workspaces:");
        for (name, id) in &self.workspaces {
            let _ = writeln!(out, "    {id}  {name}");
        }
        let _ = writeln!(out, "\nThree queries worth trying:");
        for (number, (title, document)) in self.queries().iter().enumerate() {
            let _ = writeln!(out, "\n{}. {title}.\n\n```graphql\n{document}\n```", number + 1);
        }
        out
    }
}
