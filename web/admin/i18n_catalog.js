// Strings of the catalog pages (the staff product list with stock and sold, the user look-up by
// e-mail or phone): { key: [zh, en] }, merged into the dictionary by i18n.js.

export const CATALOG_DICT = {
  "catalog.list": ["全部商品（含未上架）", "All products (unpublished too)"],
  "catalog.search_ph": ["名称中的文字，不区分大小写", "Part of the name, any case"],
  "catalog.state": ["上架状态", "Published state"],
  "catalog.only_published": ["仅已上架", "Published only"],
  "catalog.only_unpublished": ["仅未上架", "Unpublished only"],
  "catalog.category_filter": ["分类（含下级）", "Category (with subcategories)"],
  "catalog.sku_stock": ["SKU：库存 / 已售 / 可售", "SKUs: stock / sold / available"],
  "catalog.sku_line": ["#{id}：库存 {stock} / 已售 {sold} / 可售 {available}",
    "#{id}: stock {stock} / sold {sold} / available {available}"],
  "catalog.updated": ["更新时间", "Updated"],
  "catalog.stock": ["总库存", "Stock"],
  "catalog.sold": ["已售", "Sold"],
  "users.lookup_any": ["用户 ID、邮箱或手机号", "User id, e-mail or phone"],
};
