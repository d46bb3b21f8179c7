//! The agency's two clients: what they sell and how their customers reach them.

/// One client of the agency: what it sells and through which channels people reach it.
pub struct Business {
    pub workspace_name: &'static str,
    /// The website's host (a reserved `.example` name: nothing real).
    pub site: &'static str,
    pub app_name: &'static str,
    /// Products with their price range in euros.
    pub products: &'static [(&'static str, f64, f64)],
    /// Share of known customers who use the mobile app.
    pub app_share: f64,
    /// Share of known customers who also buy in a shop.
    pub store_share: f64,
    /// Share of known customers who call the customer service.
    pub call_share: f64,
    pub call_reasons: &'static [&'static str],
    /// Whether this workspace runs the demo's journey.
    pub runs_journey: bool,
}

pub const BUSINESSES: [Business; 2] = [
    Business {
        workspace_name: "Maison Lumière (fashion & home retail)",
        site: "maison-lumiere.example",
        app_name: "Maison Lumière",
        products: &[
            ("Linen shirt", 49.0, 89.0),
            ("Wool coat", 180.0, 260.0),
            ("Ceramic vase", 25.0, 60.0),
            ("Leather bag", 120.0, 210.0),
            ("Silk scarf", 35.0, 70.0),
            ("Cotton bedding set", 90.0, 150.0),
        ],
        app_share: 0.35,
        store_share: 0.25,
        call_share: 0.06,
        call_reasons: &["delivery", "return", "size advice"],
        runs_journey: true,
    },
    Business {
        workspace_name: "Vega Mobile (telecom operator)",
        site: "vega-mobile.example",
        app_name: "My Vega",
        products: &[
            ("SIM-only 20 GB plan", 10.0, 20.0),
            ("Unlimited 5G plan", 25.0, 40.0),
            ("Smartphone X", 399.0, 899.0),
            ("Wireless earbuds", 59.0, 129.0),
            ("Home fibre box", 30.0, 45.0),
        ],
        app_share: 0.5,
        store_share: 0.15,
        call_share: 0.4,
        call_reasons: &["billing", "roaming", "contract change", "network issue"],
        runs_journey: false,
    },
];
