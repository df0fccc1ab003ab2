//! The item text fed to the frozen encoder, following the paper's template
//! `Title: {title}. Brand: {brand}. Category: {category}`, extended with tags and description when present.

use crate::schemas::ItemUpload;

/// Builds the encoder input for an upload. Absent fields are left out rather than written empty.
pub fn item_text(item: &ItemUpload) -> String {
    let mut parts = vec![format!("Title: {}", item.title.trim())];
    let brand = item.brand.as_deref().or(item.author_id.as_deref());
    if let Some(brand) = brand.filter(|b| !b.trim().is_empty()) {
        parts.push(format!("Brand: {}", brand.trim()));
    }
    if let Some(category) = item.category.as_deref().filter(|c| !c.trim().is_empty()) {
        parts.push(format!("Category: {}", category.trim()));
    }
    if !item.tags.is_empty() {
        parts.push(format!("Tags: {}", item.tags.join(", ")));
    }
    if let Some(description) = item.description.as_deref().filter(|d| !d.trim().is_empty()) {
        parts.push(format!("Description: {}", description.trim()));
    }
    parts.join(". ")
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
            item_text(&upload()),
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
            item_text(&item),
            "Title: Digital caliper. Brand: creator42. Tags: diy, tools. Description: A review."
        );
    }
}
