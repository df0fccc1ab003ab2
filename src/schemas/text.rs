//! The item text fed to the frozen encoder, following the paper's template
//! `Title: {title}. Brand: {brand}. Category: {category}`, extended with tags and description when present.

use super::ItemUpload;

impl ItemUpload {
    /// The encoder input for this upload. Absent fields are left out rather than written empty.
    pub fn text(&self) -> String {
        let mut parts = vec![format!("Title: {}", self.title.trim())];
        let brand = self.brand.as_deref().or(self.author_id.as_deref());
        if let Some(brand) = brand.filter(|b| !b.trim().is_empty()) {
            parts.push(format!("Brand: {}", brand.trim()));
        }
        if let Some(category) = self.category.as_deref().filter(|c| !c.trim().is_empty()) {
            parts.push(format!("Category: {}", category.trim()));
        }
        if !self.tags.is_empty() {
            parts.push(format!("Tags: {}", self.tags.join(", ")));
        }
        if let Some(description) = self.description.as_deref().filter(|d| !d.trim().is_empty()) {
            parts.push(format!("Description: {}", description.trim()));
        }
        parts.join(". ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> ItemUpload {
        ItemUpload {
            item_id: "i1".into(),
            title: "Digital caliper".into(),
            description: None,
            tags: vec![],
            category: Some("Measuring Tools".into()),
            brand: Some("Neiko".into()),
            author_id: None,
            ts_ms: 0,
        }
    }

    #[test]
    fn follows_the_paper_template() {
        assert_eq!(
            upload().text(),
            "Title: Digital caliper. Brand: Neiko. Category: Measuring Tools"
        );
    }

    #[test]
    fn author_stands_in_for_brand_and_extras_follow() {
        let mut item = upload();
        item.brand = None;
        item.author_id = Some("creator42".into());
        item.category = None;
        item.tags = vec!["diy".into(), "tools".into()];
        item.description = Some("A review.".into());
        assert_eq!(
            item.text(),
            "Title: Digital caliper. Brand: creator42. Tags: diy, tools. Description: A review."
        );
    }
}
