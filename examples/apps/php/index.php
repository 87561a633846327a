<?php
// The smallest application: a form that posts back to itself.
$name = isset($_POST['name']) ? htmlspecialchars($_POST['name']) : null;
?><!DOCTYPE html>
<html><head><title>cgiq php example</title><link rel="stylesheet" href="style.css"></head>
<body>
<h1>Hello<?= $name !== null ? ", $name" : "" ?></h1>
<form method="post" action="<?= htmlspecialchars($_SERVER['SCRIPT_NAME']) ?>">
<input name="name"> <button>Send</button>
</form>
</body></html>
