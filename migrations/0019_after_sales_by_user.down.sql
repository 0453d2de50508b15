DROP INDEX after_sales_of_user;
