//! One page of a list as every list answers it: the items and the cursor of
//! the next page. Made from the app's [`Page`] of rows.

use ironcase_app::page::Page;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct PageOut<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T, R: Into<T>> From<Page<R>> for PageOut<T> {
    fn from(p: Page<R>) -> Self {
        PageOut { items: p.items.into_iter().map(Into::into).collect(), next_cursor: p.next_cursor }
    }
}
