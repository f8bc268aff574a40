v=spf1 ip4:192.0.2.5
 include:spf.protection.outlook.com ~all