set datafile missing '?'
set title "triad: speedup over serial (n=33554432 passes=10)" noenhanced
set xlabel 'workers'
set ylabel 'speedup (serial median / median)'
set key top left
set grid
set xrange [0.8:2.3]
set yrange [0:*]
set xtics (1, 2)
set terminal svg size 720,480 dynamic background rgb 'white'
set output 'triad.svg'
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', 'triad.dat' using 1:2 title 'forkline' with linespoints lw 2 pt 7, 'triad.dat' using 1:3 title 'tbb' with linespoints lw 2 pt 7, 'triad.dat' using 1:4 title 'omp' with linespoints lw 2 pt 7, 'triad.dat' using 1:5 title 'forkline-affinity' with linespoints lw 2 pt 7
set terminal pngcairo size 720,480
set output 'triad.png'
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', 'triad.dat' using 1:2 title 'forkline' with linespoints lw 2 pt 7, 'triad.dat' using 1:3 title 'tbb' with linespoints lw 2 pt 7, 'triad.dat' using 1:4 title 'omp' with linespoints lw 2 pt 7, 'triad.dat' using 1:5 title 'forkline-affinity' with linespoints lw 2 pt 7
unset output
